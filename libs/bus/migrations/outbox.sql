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
