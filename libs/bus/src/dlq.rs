//! DLQ operations of events.md §6.4 (`list`, `replay`, `purge`) as library functions for the
//! operator CLI. Does network I/O on the channel it is given.

use lapin::{
    BasicProperties, Channel,
    message::Delivery,
    options::{
        BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
        ConfirmSelectOptions, QueuePurgeOptions,
    },
    types::{AMQPValue, ShortString},
};
use payplane_events::{
    time,
    topology::{DEFAULT_EXCHANGE, dlq_name, headers as h},
};

use crate::message;

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("reading {queue}")]
    Get {
        queue: String,
        #[source]
        source: lapin::Error,
    },
    #[error("settling a message of {queue}")]
    Settle {
        queue: String,
        #[source]
        source: lapin::Error,
    },
    #[error("republishing message {message_id:?} to {queue}")]
    Publish {
        queue: String,
        message_id: Option<String>,
        #[source]
        source: lapin::Error,
    },
    #[error("broker did not confirm the replay of {message_id:?} to {queue}")]
    NotConfirmed {
        queue: String,
        message_id: Option<String>,
    },
    #[error("purging {queue}")]
    Purge {
        queue: String,
        #[source]
        source: lapin::Error,
    },
}

/// One parked message as `dlq list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DlqMessage {
    pub message_id: Option<String>,
    pub routing_key: Option<String>,
    pub failure_class: Option<String>,
    pub failure_reason: Option<String>,
    pub failed_at: Option<String>,
    pub retry_count: Option<i64>,
    pub body: Vec<u8>,
}

impl DlqMessage {
    fn from_delivery(d: &Delivery) -> Self {
        let hdrs = d.properties.headers().as_ref();
        DlqMessage {
            message_id: d
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.as_str().to_owned()),
            routing_key: message::header_str(hdrs, h::ORIGINAL_ROUTING_KEY)
                .or_else(|| d.properties.kind().as_ref().map(|k| k.as_str().to_owned())),
            failure_class: message::header_str(hdrs, h::FAILURE_CLASS),
            failure_reason: message::header_str(hdrs, h::FAILURE_REASON),
            failed_at: message::header_str(hdrs, h::FAILED_AT),
            retry_count: message::header_int(hdrs, h::RETRY_COUNT),
            body: d.data.clone(),
        }
    }
}

/// Takes up to `limit` messages of `dlq` without acking them.
async fn take(channel: &Channel, dlq: &str, limit: usize) -> Result<Vec<Delivery>, DlqError> {
    let mut out = Vec::new();
    while out.len() < limit {
        let got = channel
            .basic_get(dlq.into(), BasicGetOptions { no_ack: false })
            .await
            .map_err(|source| DlqError::Get {
                queue: dlq.to_owned(),
                source,
            })?;
        match got {
            Some(m) => out.push(m.delivery),
            None => break,
        }
    }
    Ok(out)
}

async fn requeue(dlq: &str, deliveries: &[&Delivery]) -> Result<(), DlqError> {
    for d in deliveries {
        d.acker
            .nack(BasicNackOptions {
                multiple: false,
                requeue: true,
            })
            .await
            .map_err(settle_failed(dlq))?;
    }
    Ok(())
}

/// Acks `d` from `dlq`, which removes it for good (after its replay was confirmed, or on purge).
async fn remove(dlq: &str, d: &Delivery) -> Result<(), DlqError> {
    d.acker
        .ack(BasicAckOptions::default())
        .await
        .map_err(settle_failed(dlq))?;
    Ok(())
}

/// The error of an ack or nack on `dlq` that the broker did not take.
fn settle_failed(dlq: &str) -> impl FnOnce(lapin::Error) -> DlqError + '_ {
    move |source| DlqError::Settle {
        queue: dlq.to_owned(),
        source,
    }
}

/// `dlq list --queue <queue> [--limit N]`: the first `limit` messages of `<queue>.dlq`, left in place.
pub async fn list(
    channel: &Channel,
    queue: &str,
    limit: usize,
) -> Result<Vec<DlqMessage>, DlqError> {
    let dlq = dlq_name(queue);
    let taken = take(channel, &dlq, limit).await?;
    let out = taken.iter().map(DlqMessage::from_delivery).collect();
    requeue(&dlq, &taken.iter().collect::<Vec<_>>()).await?;
    Ok(out)
}

fn matches(d: &Delivery, message_id: Option<&str>) -> bool {
    message_id.is_none_or(|id| {
        d.properties
            .message_id()
            .as_ref()
            .is_some_and(|m| m.as_str() == id)
    })
}

fn replay_properties(props: &BasicProperties) -> BasicProperties {
    message::with_edited_headers(props, |map| {
        let replays = message::header_int(props.headers().as_ref(), h::REPLAY_COUNT).unwrap_or(0);
        map.retain(|k, _| !k.as_str().starts_with("x-failure-"));
        map.insert(h::RETRY_COUNT.into(), AMQPValue::LongLongInt(0));
        map.insert(
            h::REPLAYED_AT.into(),
            message::text(time::format(&time::now())),
        );
        map.insert(h::REPLAY_COUNT.into(), AMQPValue::LongLongInt(replays + 1));
    })
}

/// `dlq replay`: republishes the selected messages of `<queue>.dlq` to `<queue>` through the
/// default exchange (only that consumer sees them again) and acks each from the DLQ after its
/// confirm. Scans at most `limit` messages. With `dry_run` nothing is moved. Returns the
/// selected messages.
pub async fn replay(
    channel: &Channel,
    queue: &str,
    message_id: Option<&str>,
    limit: usize,
    dry_run: bool,
) -> Result<Vec<DlqMessage>, DlqError> {
    let dlq = dlq_name(queue);
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|source| DlqError::Publish {
            queue: queue.to_owned(),
            message_id: None,
            source,
        })?;
    let taken = take(channel, &dlq, limit).await?;
    let (selected, others): (Vec<&Delivery>, Vec<&Delivery>) =
        taken.iter().partition(|d| matches(d, message_id));
    let out = selected
        .iter()
        .map(|d| DlqMessage::from_delivery(d))
        .collect();
    if dry_run {
        requeue(&dlq, &taken.iter().collect::<Vec<_>>()).await?;
        return Ok(out);
    }
    requeue(&dlq, &others).await?;
    for d in selected {
        let id = d
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str().to_owned());
        let confirm = channel
            .basic_publish(
                DEFAULT_EXCHANGE.into(),
                ShortString::from(queue),
                BasicPublishOptions::default(),
                &d.data,
                replay_properties(&d.properties),
            )
            .await
            .map_err(|source| DlqError::Publish {
                queue: queue.to_owned(),
                message_id: id.clone(),
                source,
            })?
            .await
            .map_err(|source| DlqError::Publish {
                queue: queue.to_owned(),
                message_id: id.clone(),
                source,
            })?;
        if !confirm.is_ack() {
            return Err(DlqError::NotConfirmed {
                queue: queue.to_owned(),
                message_id: id,
            });
        }
        remove(&dlq, d).await?;
    }
    Ok(out)
}

/// `dlq purge`: deletes every parked message of `<queue>.dlq`, or only the one with
/// `message_id`. Returns how many were deleted.
pub async fn purge(
    channel: &Channel,
    queue: &str,
    message_id: Option<&str>,
) -> Result<u64, DlqError> {
    let dlq = dlq_name(queue);
    let Some(id) = message_id else {
        let n = channel
            .queue_purge(dlq.as_str().into(), QueuePurgeOptions::default())
            .await
            .map_err(|source| DlqError::Purge {
                queue: dlq.clone(),
                source,
            })?;
        return Ok(u64::from(n));
    };
    let taken = take(channel, &dlq, usize::MAX).await?;
    let mut deleted = 0;
    let mut keep = Vec::new();
    for d in &taken {
        if matches(d, Some(id)) {
            remove(&dlq, d).await?;
            deleted += 1;
        } else {
            keep.push(d);
        }
    }
    requeue(&dlq, &keep).await?;
    Ok(deleted)
}
