//! Broker connections (events.md §1.4): heartbeat 30 s, and the reconnect schedule of 1 s
//! doubling to 30 s with jitter. Does network I/O.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use lapin::{Connection, ConnectionProperties};
use payplane_events::topology::HEARTBEAT_SECS;

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connecting to the broker at {url}")]
    Connect {
        url: String,
        #[source]
        source: lapin::Error,
    },
}

/// Adds `heartbeat=30` to an AMQP URL unless it already sets one.
pub fn with_heartbeat(url: &str) -> String {
    if url.contains("heartbeat=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&heartbeat={HEARTBEAT_SECS}")
    } else {
        format!("{url}?heartbeat={HEARTBEAT_SECS}")
    }
}

/// Strips credentials so URLs can be logged and put into errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// One connection attempt. Reconnection is done by the callers' loops (relay, consumer), which
/// redeclare their topology afterwards, instead of lapin's auto-recovery, so that a recovered
/// channel never carries unconfirmed state across a broker restart.
pub async fn connect(url: &str, name: &str) -> Result<Connection, ConnError> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(&with_heartbeat(url), props)
        .await
        .map_err(|source| ConnError::Connect {
            url: redact(url),
            source,
        })
}

/// A new channel of `connection` in confirm mode: every publish on it is acknowledged by the
/// broker, which is what the outbox's and the retry path's at-least-once rests on.
pub async fn confirm_channel(connection: &Connection) -> Result<lapin::Channel, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// The reconnect delays: 1 s, doubling, at most 30 s, with jitter, forever.
pub fn reconnect_backoff() -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_and_redaction() {
        assert_eq!(with_heartbeat("amqp://h/%2f"), "amqp://h/%2f?heartbeat=30");
        assert_eq!(
            with_heartbeat("amqp://h/v?x=1"),
            "amqp://h/v?x=1&heartbeat=30"
        );
        assert_eq!(redact("amqp://guest:pw@h:5672/v"), "amqp://***@h:5672/v");
    }

    #[test]
    fn backoff_starts_near_one_second_and_caps() {
        let delays: Vec<_> = reconnect_backoff().take(10).collect();
        assert!(delays[0] >= Duration::from_secs(1) && delays[0] <= Duration::from_secs(2));
        assert!(delays.iter().all(|d| *d <= Duration::from_mins(1)));
        assert!(delays[9] >= Duration::from_secs(30));
    }
}
