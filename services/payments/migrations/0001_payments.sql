-- payments_db (data.md §3): user directory, payments, their transactions, idempotency keys,
-- PSP webhook events, and the bus tables (data.md §7).

CREATE TABLE users (
    id                uuid PRIMARY KEY,
    email             text NOT NULL CHECK (email = lower(email)),
    name              text NOT NULL,
    role              text NOT NULL CHECK (role IN ('ADMIN','CUSTOMER','VENDOR')),
    is_active         boolean NOT NULL DEFAULT true,
    deleted_at        timestamptz,
    source_updated_at timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    updated_at        timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);
CREATE UNIQUE INDEX users_email_live ON users (email) WHERE deleted_at IS NULL;
CREATE INDEX users_recipients ON users (lower(name), email) WHERE deleted_at IS NULL AND is_active;

CREATE TABLE payments (
    id                 uuid PRIMARY KEY,
    sender_id          uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    recipient_id       uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    amount             numeric(12,2) NOT NULL CHECK (amount >= 0.01 AND amount <= 10000000.00),
    currency           char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending','processing','completed','failed','cancelled')),
    type               text NOT NULL CHECK (type IN ('instant','scheduled','recurring')),
    description        text NOT NULL CHECK (char_length(description) BETWEEN 1 AND 500),
    metadata           jsonb CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    psp_transaction_id text,
    psp_status         text,
    failure_reason     text CHECK (char_length(failure_reason) <= 1000),
    scheduled_for      timestamptz,
    completed_at       timestamptz,
    idempotency_key    text,
    created_at         timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    updated_at         timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    CHECK (sender_id <> recipient_id),
    CHECK (type <> 'scheduled' OR scheduled_for IS NOT NULL),
    CHECK (type <> 'instant' OR scheduled_for IS NULL),
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
CREATE INDEX payments_sender ON payments (sender_id, created_at DESC, id DESC);
CREATE INDEX payments_recipient ON payments (recipient_id, created_at DESC, id DESC);
CREATE INDEX payments_created ON payments (created_at DESC, id DESC);
CREATE INDEX payments_status ON payments (status);
CREATE UNIQUE INDEX payments_psp_tx ON payments (psp_transaction_id) WHERE psp_transaction_id IS NOT NULL;
CREATE INDEX payments_submit ON payments (scheduled_for, created_at) WHERE status = 'pending';
CREATE INDEX payments_settle ON payments (updated_at) WHERE status = 'processing';

CREATE TABLE payment_transactions (
    id                 uuid PRIMARY KEY,
    payment_id         uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    status             text NOT NULL
                       CHECK (status IN ('pending','processing','completed','failed','cancelled')),
    previous_status    text
                       CHECK (previous_status IN ('pending','processing','completed','failed','cancelled')),
    status_message     text CHECK (char_length(status_message) <= 1000),
    psp_transaction_id text,
    actor_id           uuid,
    actor_type         text NOT NULL CHECK (actor_type IN ('user','admin','system','psp')),
    metadata           jsonb,
    created_at         timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);
CREATE INDEX payment_transactions_payment ON payment_transactions (payment_id, created_at, id);

CREATE TABLE idempotency_keys (
    user_id             uuid NOT NULL,
    key                 text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_method      text NOT NULL,
    request_path        text NOT NULL,
    request_fingerprint bytea NOT NULL,
    state               text NOT NULL DEFAULT 'in_progress' CHECK (state IN ('in_progress','completed')),
    response_status     smallint,
    response_body       bytea,
    payment_id          uuid REFERENCES payments (id) ON DELETE SET NULL,
    locked_at           timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    created_at          timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    expires_at          timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

CREATE TABLE psp_webhook_events (
    event_id    text PRIMARY KEY,
    event_type  text NOT NULL,
    payment_id  uuid,
    payload     jsonb NOT NULL,
    applied     boolean NOT NULL,
    outcome     text NOT NULL
                CHECK (outcome IN ('applied','payment_not_found','already_in_status','invalid_transition')),
    received_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);
CREATE INDEX psp_webhook_events_payment ON psp_webhook_events (payment_id);

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
