-- auth_db (data.md §2 and §7.1).
CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    email               text NOT NULL CHECK (email = lower(email) AND char_length(email) <= 255),
    password_hash       text NOT NULL,
    name                text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    role                text NOT NULL DEFAULT 'CUSTOMER' CHECK (role IN ('ADMIN', 'CUSTOMER', 'VENDOR')),
    is_active           boolean NOT NULL DEFAULT true,
    email_verified      boolean NOT NULL DEFAULT false,
    token_version       integer NOT NULL DEFAULT 1,
    deactivated_at      timestamptz,
    deactivation_reason text CHECK (char_length(deactivation_reason) <= 500),
    password_changed_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    created_at          timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    updated_at          timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_role_active ON users (role, is_active);
CREATE INDEX users_created_at ON users (created_at);
CREATE INDEX users_updated_at ON users (updated_at);

CREATE TABLE devices (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id      text NOT NULL CHECK (device_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
    device_name    text CHECK (char_length(device_name) <= 100),
    device_type    text CHECK (device_type IN ('browser', 'mobile', 'desktop', 'other')),
    user_agent     text CHECK (char_length(user_agent) <= 512),
    ip_address     inet,
    created_at     timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    last_active_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);
CREATE UNIQUE INDEX devices_user_device ON devices (user_id, device_id);
CREATE INDEX devices_user_last_active ON devices (user_id, last_active_at DESC);

CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_ref    uuid REFERENCES devices (id) ON DELETE SET NULL,
    device_id     text NOT NULL,
    ip_address    inet,
    user_agent    text CHECK (char_length(user_agent) <= 512),
    created_at    timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    last_used_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoke_reason text CHECK (revoke_reason IN ('logout', 'logout_all', 'device_logout', 'logout_others',
        'password_changed', 'token_reuse', 'replaced', 'session_limit', 'user_deactivated', 'user_deleted')),
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX sessions_user_active ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX sessions_user_device_active ON sessions (user_id, device_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_device_ref_active ON sessions (device_ref) WHERE revoked_at IS NULL;
CREATE INDEX sessions_revoked_at ON sessions (revoked_at);

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    issued_at   timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz,
    replaced_by uuid REFERENCES refresh_tokens (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE UNIQUE INDEX refresh_tokens_current ON refresh_tokens (session_id) WHERE rotated_at IS NULL;

CREATE TABLE login_throttle (
    email_hash      bytea PRIMARY KEY,
    failed_count    integer NOT NULL DEFAULT 0 CHECK (failed_count >= 0),
    first_failed_at timestamptz,
    last_failed_at  timestamptz,
    locked_at       timestamptz,
    locked_until    timestamptz,
    last_ip         inet
);

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
