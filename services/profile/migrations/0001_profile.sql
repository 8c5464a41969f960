-- profile_db (data.md §5): user profiles, plus the bus tables (data.md §7).
CREATE TABLE user_profiles (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL UNIQUE,
    phone       text CHECK (char_length(phone) BETWEEN 10 AND 20),
    address     text CHECK (char_length(address) BETWEEN 1 AND 500),
    bio         text CHECK (char_length(bio) <= 1000),
    avatar_url  text CHECK (char_length(avatar_url) <= 2097152),
    preferences jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    updated_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);

-- Users whose auth.user.deleted was applied. Not in data.md: without it a late or redelivered
-- auth.user.created (or a request racing the deletion) would recreate the profile of a deleted
-- user; events.md §6.2 makes a deletion final for read models.
CREATE TABLE deleted_users (
    user_id    uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);

-- The outbox table of data.md §7.1 (copied from libs/bus/migrations/outbox.sql).
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

-- The processed_events table of data.md §7.2 (copied from libs/bus/migrations/processed_events.sql).
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    routing_key  text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
