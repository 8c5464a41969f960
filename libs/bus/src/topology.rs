//! Declares the topology data of `payplane_events::topology` on a lapin channel, idempotently.
//! Does network I/O. A service declares only what it owns.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldTable},
};
use payplane_events::topology::{
    self as topo, ArgValue, ConsumerQueue, Declarations, ExchangeKind as Kind, QueueDecl,
};

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("declaring exchange {exchange}")]
    Exchange {
        exchange: String,
        #[source]
        source: lapin::Error,
    },
    #[error(
        "queue {queue} exists with other arguments than events.md §1.2 requires; refusing to start \
         (changing queue arguments needs an operator migration)"
    )]
    ArgumentMismatch {
        queue: String,
        #[source]
        source: lapin::Error,
    },
    #[error("declaring queue {queue}")]
    Queue {
        queue: String,
        #[source]
        source: lapin::Error,
    },
    #[error("binding queue {queue} to {exchange} with {routing_key}")]
    Bind {
        queue: String,
        exchange: String,
        routing_key: String,
        #[source]
        source: lapin::Error,
    },
}

impl TopologyError {
    /// An argument mismatch cannot be cured by reconnecting; everything else may be.
    pub fn is_fatal(&self) -> bool {
        matches!(self, TopologyError::ArgumentMismatch { .. })
    }
}

/// The `x-*` arguments as an AMQP table.
pub fn arguments(queue: &QueueDecl) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in &queue.arguments {
        let value = match value {
            ArgValue::Str(s) => AMQPValue::LongString(s.as_str().into()),
            ArgValue::Int(i) => AMQPValue::LongLongInt(*i),
        };
        table.insert((*key).into(), value);
    }
    table
}

fn is_precondition_failed(err: &lapin::Error) -> bool {
    matches!(err.kind(), lapin::ErrorKind::ProtocolError(e)
        if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
}

/// Declares everything in `decls`.
pub async fn declare(channel: &Channel, decls: &Declarations) -> Result<(), TopologyError> {
    for ex in &decls.exchanges {
        let kind = match ex.kind {
            Kind::Topic => ExchangeKind::Topic,
            Kind::Direct => ExchangeKind::Direct,
        };
        let options = ExchangeDeclareOptions {
            durable: ex.durable,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(ex.name.into(), kind, options, FieldTable::default())
            .await
            .map_err(|source| TopologyError::Exchange {
                exchange: ex.name.to_owned(),
                source,
            })?;
    }
    for q in &decls.queues {
        let options = QueueDeclareOptions {
            durable: q.durable,
            exclusive: q.exclusive,
            auto_delete: q.auto_delete,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(q.name.as_str().into(), options, arguments(q))
            .await
            .map_err(|source| {
                if is_precondition_failed(&source) {
                    TopologyError::ArgumentMismatch {
                        queue: q.name.clone(),
                        source,
                    }
                } else {
                    TopologyError::Queue {
                        queue: q.name.clone(),
                        source,
                    }
                }
            })?;
    }
    for b in &decls.bindings {
        channel
            .queue_bind(
                b.queue.as_str().into(),
                b.exchange.into(),
                b.routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| TopologyError::Bind {
                queue: b.queue.clone(),
                exchange: b.exchange.to_owned(),
                routing_key: b.routing_key.clone(),
                source,
            })?;
    }
    Ok(())
}

/// What every producer declares: the `events` exchange.
pub async fn declare_producer(channel: &Channel) -> Result<(), TopologyError> {
    declare(channel, &topo::producer_declarations()).await
}

/// What the owner of `queue` declares: both exchanges, the queue and its bindings, the retry
/// queues and the DLQ.
pub async fn declare_consumer(
    channel: &Channel,
    queue: &ConsumerQueue,
) -> Result<(), TopologyError> {
    declare(channel, &topo::consumer_declarations(queue)).await
}
