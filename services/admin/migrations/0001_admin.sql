-- admin_db (data.md §4 and §7).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Read model of the auth users, fed by auth.user.* and by the admin API's own writes.
CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL CHECK (email = lower(email)),
    name           text NOT NULL,
    role           text NOT NULL CHECK (role IN ('ADMIN', 'CUSTOMER', 'VENDOR')),
    is_active      boolean NOT NULL,
    email_verified boolean NOT NULL,
    last_login_at  timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    deleted_at     timestamptz,
    synced_at      timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);
CREATE UNIQUE INDEX users_email_live ON users (email) WHERE deleted_at IS NULL;
CREATE INDEX users_role_live ON users (role) WHERE deleted_at IS NULL;
CREATE INDEX users_created_at ON users (created_at DESC, id DESC);
CREATE INDEX users_is_active ON users (is_active);
CREATE INDEX users_email_trgm ON users USING gin (lower(email) gin_trgm_ops);
CREATE INDEX users_name_trgm ON users USING gin (lower(name) gin_trgm_ops);

-- Append-only audit log.
CREATE TABLE audit_logs (
    id              uuid PRIMARY KEY,
    user_id         uuid,
    action          text NOT NULL CHECK (action ~ '^[A-Z_]{1,64}$'),
    resource_type   text CHECK (resource_type IN ('user', 'payment', 'system_config', 'session', 'profile')),
    resource_id     text CHECK (char_length(resource_id) <= 255),
    details         jsonb CHECK (details IS NULL OR jsonb_typeof(details) = 'object'),
    ip_address      inet,
    user_agent      text CHECK (char_length(user_agent) <= 512),
    source_event_id uuid,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);
CREATE INDEX audit_logs_created ON audit_logs (created_at DESC, id DESC);
CREATE INDEX audit_logs_user ON audit_logs (user_id, created_at DESC);
CREATE INDEX audit_logs_action ON audit_logs (action, created_at DESC);
CREATE INDEX audit_logs_resource ON audit_logs (resource_type, resource_id);
CREATE UNIQUE INDEX audit_logs_source_event ON audit_logs (source_event_id, action);

CREATE TABLE system_config (
    key         text PRIMARY KEY CHECK (key ~ '^[a-z0-9]+([._-][a-z0-9]+)*$' AND char_length(key) <= 128),
    value       jsonb NOT NULL,
    description text CHECK (char_length(description) <= 500),
    updated_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    updated_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);

-- The outbox table of data.md §7.1. Every producing service's migrations contain this DDL.
CREATE TABLE outbox (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             uuid NOT NULL UNIQUE,
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    routing_key    text NOT NULL,
    envelope       jsonb NOT NULL,
    headers        jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    published_at   timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- The processed_events table of data.md §7.2. Every consuming service's migrations contain this DDL.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    routing_key  text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
