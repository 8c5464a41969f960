//! Metric names of events.md §8 and their descriptions, recorded through the `metrics` facade
//! (each service installs a Prometheus recorder and serves `/metrics`). No I/O.

/// Counter `{routing_key}`: events the broker confirmed.
pub const PUBLISHED: &str = "events_published_total";
/// Counter `{reason}`: publishes that were nacked, timed out or failed (`nack`, `timeout`, `error`).
pub const PUBLISH_FAILURES: &str = "events_publish_failures_total";
/// Gauge: unpublished outbox rows.
pub const OUTBOX_PENDING: &str = "outbox_pending";
/// Gauge: age of the oldest unpublished outbox row (the relay's lag).
pub const OUTBOX_OLDEST: &str = "outbox_oldest_unpublished_seconds";
/// Counter `{queue,routing_key,outcome}`.
pub const CONSUMED: &str = "events_consumed_total";
/// Histogram `{queue,routing_key}`.
pub const HANDLING_SECONDS: &str = "event_handling_seconds";

/// Registers descriptions with the installed recorder; call once after installing it.
pub fn describe() {
    metrics::describe_counter!(
        PUBLISHED,
        "Events published to RabbitMQ and confirmed by the broker"
    );
    metrics::describe_counter!(
        PUBLISH_FAILURES,
        "Event publishes nacked, unconfirmed in time or failed"
    );
    metrics::describe_gauge!(OUTBOX_PENDING, "Outbox rows not yet published");
    metrics::describe_gauge!(
        OUTBOX_OLDEST,
        "Age in seconds of the oldest unpublished outbox row"
    );
    metrics::describe_counter!(
        CONSUMED,
        "Events taken from a queue, by outcome (processed, duplicate, ignored, unsupported_version, retried, dead_lettered)"
    );
    metrics::describe_histogram!(
        HANDLING_SECONDS,
        metrics::Unit::Seconds,
        "Time to handle one event"
    );
}
