-- The earlier system's databases as import.md §1 describes them (Prisma names and types: TEXT
-- ids, TIMESTAMP(3) without time zone, enum types), in one combined database. The import's
-- test and `payplane bench import` create their source databases from it; the import itself
-- only reads.
CREATE TYPE "Role" AS ENUM ('ADMIN', 'CUSTOMER', 'VENDOR');
CREATE TYPE "PaymentStatus" AS ENUM ('pending', 'processing', 'completed', 'failed', 'cancelled');
CREATE TYPE "PaymentType" AS ENUM ('instant', 'scheduled', 'recurring');
CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT UNIQUE NOT NULL, password_hash TEXT NOT NULL,
  name TEXT NOT NULL, role "Role" NOT NULL DEFAULT 'CUSTOMER', email_verified BOOLEAN NOT NULL DEFAULT false,
  created_at TIMESTAMP(3) NOT NULL, updated_at TIMESTAMP(3) NOT NULL);
CREATE TABLE refresh_tokens (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
  token TEXT NOT NULL, token_family TEXT, fingerprint TEXT, is_revoked BOOLEAN NOT NULL DEFAULT false,
  expires_at TIMESTAMP(3) NOT NULL, created_at TIMESTAMP(3) NOT NULL, last_used_at TIMESTAMP(3));
CREATE TABLE devices (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
  device_id TEXT UNIQUE NOT NULL, device_name TEXT, device_type TEXT, user_agent TEXT,
  last_active_at TIMESTAMP(3) NOT NULL, created_at TIMESTAMP(3) NOT NULL);
CREATE TABLE payments (id TEXT PRIMARY KEY, sender_id TEXT NOT NULL REFERENCES users(id),
  recipient_id TEXT REFERENCES users(id) ON DELETE SET NULL, amount DECIMAL(10,2) NOT NULL,
  currency TEXT NOT NULL DEFAULT 'USD', status "PaymentStatus" NOT NULL DEFAULT 'pending',
  type "PaymentType" NOT NULL DEFAULT 'instant', description TEXT, metadata JSONB,
  psp_transaction_id TEXT, psp_status TEXT, failure_reason TEXT, completed_at TIMESTAMP(3),
  created_at TIMESTAMP(3) NOT NULL, updated_at TIMESTAMP(3) NOT NULL);
CREATE TABLE payment_transactions (id TEXT PRIMARY KEY, payment_id TEXT NOT NULL REFERENCES payments(id),
  status "PaymentStatus" NOT NULL, status_message TEXT, psp_transaction_id TEXT, metadata JSONB,
  created_at TIMESTAMP(3) NOT NULL);
CREATE TABLE audit_logs (id TEXT PRIMARY KEY, user_id TEXT, action TEXT NOT NULL, resource_type TEXT,
  resource_id TEXT, details JSONB, ip_address TEXT, user_agent TEXT, created_at TIMESTAMP(3) NOT NULL);
CREATE TABLE system_config (key TEXT PRIMARY KEY, value JSONB NOT NULL, description TEXT,
  updated_at TIMESTAMP(3) NOT NULL, updated_by TEXT);
CREATE TABLE user_profiles (id TEXT PRIMARY KEY, user_id TEXT UNIQUE NOT NULL, avatar_url TEXT,
  phone TEXT, address TEXT, bio TEXT, preferences JSONB, created_at TIMESTAMP(3) NOT NULL,
  updated_at TIMESTAMP(3) NOT NULL);
