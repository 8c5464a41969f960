//! The RabbitMQ topology of events.md §1.1–§1.3 as plain data: every exchange, queue, binding,
//! queue argument and per-service permission regex, in one place. No I/O: `payplane-bus`
//! declares these with lapin, the operator renders them into broker definitions.

use std::borrow::Cow;

/// The topic exchange carrying every domain event.
pub const EVENTS_EXCHANGE: &str = "events";
/// The direct exchange for dead letters, routing key `<queue>.dlq`.
pub const DLX_EXCHANGE: &str = "events.dlx";
/// The default exchange, through which retry queues and replays are addressed by queue name.
pub const DEFAULT_EXCHANGE: &str = "";

/// TTLs of `<queue>.retry.1`, `.retry.2`, `.retry.3` in milliseconds (events.md §6.3).
pub const RETRY_DELAYS_MS: [i64; 3] = [1000, 2000, 4000];
/// Broker-side safety net against crash loops (`x-delivery-limit`).
pub const DELIVERY_LIMIT: i64 = 10;
/// Prefetch of each consumer channel (events.md §1.4).
pub const DEFAULT_PREFETCH: u16 = 16;
/// Heartbeat of every connection in seconds (events.md §1.4).
pub const HEARTBEAT_SECS: u16 = 30;
/// Maximum message body (events.md §1.4).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Header names used by the retry and dead-letter machinery (events.md §6.3, §6.4).
pub mod headers {
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
    pub const RETRY_COUNT: &str = "x-retry-count";
    pub const LAST_ERROR: &str = "x-last-error";
    pub const FAILURE_REASON: &str = "x-failure-reason";
    pub const FAILURE_CLASS: &str = "x-failure-class";
    pub const FAILED_AT: &str = "x-failed-at";
    pub const ORIGINAL_QUEUE: &str = "x-original-queue";
    pub const ORIGINAL_ROUTING_KEY: &str = "x-original-routing-key";
    pub const CONSUMER: &str = "x-consumer";
    pub const REPLAYED_AT: &str = "x-replayed-at";
    pub const REPLAY_COUNT: &str = "x-replay-count";
}

/// Exchange type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    Topic,
    Direct,
}

impl ExchangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Topic => "topic",
            ExchangeKind::Direct => "direct",
        }
    }
}

/// One exchange declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeDecl {
    pub name: &'static str,
    pub kind: ExchangeKind,
    pub durable: bool,
}

/// A queue argument value; the broker compares these on redeclaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgValue {
    Str(String),
    Int(i64),
}

/// One queue declaration with its `x-*` arguments, in the order of events.md §1.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDecl {
    pub name: String,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: Vec<(&'static str, ArgValue)>,
}

/// One binding of a queue to an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingDecl {
    pub exchange: &'static str,
    pub queue: String,
    pub routing_key: String,
}

/// Everything one process declares at start-up (and again after each reconnect).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declarations {
    pub exchanges: Vec<ExchangeDecl>,
    pub queues: Vec<QueueDecl>,
    pub bindings: Vec<BindingDecl>,
}

impl Declarations {
    /// Adds `other` without repeating exchanges already present.
    pub fn merge(&mut self, other: Declarations) {
        for ex in other.exchanges {
            if !self.exchanges.contains(&ex) {
                self.exchanges.push(ex);
            }
        }
        self.queues.extend(other.queues);
        self.bindings.extend(other.bindings);
    }
}

/// A durable consumer queue owned by one service (events.md §1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerQueue {
    /// Queue name, e.g. `admin.events`.
    pub name: Cow<'static, str>,
    /// Owning service, sent as `x-consumer` on dead letters.
    pub owner: Cow<'static, str>,
    /// Binding keys on the `events` exchange.
    pub bindings: Cow<'static, [&'static str]>,
}

impl ConsumerQueue {
    /// A queue outside the contract's three (tests, benchmarks), with the same argument set.
    pub fn custom(
        name: impl Into<String>,
        owner: impl Into<String>,
        bindings: &'static [&'static str],
    ) -> Self {
        ConsumerQueue {
            name: Cow::Owned(name.into()),
            owner: Cow::Owned(owner.into()),
            bindings: Cow::Borrowed(bindings),
        }
    }

    /// `<queue>.retry.<n>` for `n` in 1..=3.
    pub fn retry_queue(&self, n: usize) -> String {
        format!("{}.retry.{n}", self.name)
    }

    /// `<queue>.dlq`, also the routing key on `events.dlx`.
    pub fn dlq(&self) -> String {
        dlq_name(&self.name)
    }
}

/// `<queue>.dlq`.
pub fn dlq_name(queue: &str) -> String {
    format!("{queue}.dlq")
}

pub const ADMIN_EVENTS: ConsumerQueue = ConsumerQueue {
    name: Cow::Borrowed("admin.events"),
    owner: Cow::Borrowed("admin"),
    bindings: Cow::Borrowed(&["#"]),
};

pub const PAYMENTS_EVENTS: ConsumerQueue = ConsumerQueue {
    name: Cow::Borrowed("payments.events"),
    owner: Cow::Borrowed("payments"),
    bindings: Cow::Borrowed(&["auth.user.*"]),
};

pub const PROFILE_EVENTS: ConsumerQueue = ConsumerQueue {
    name: Cow::Borrowed("profile.events"),
    owner: Cow::Borrowed("profile"),
    bindings: Cow::Borrowed(&[
        "auth.user.created",
        "auth.user.updated",
        "auth.user.deleted",
    ]),
};

/// The three durable consumer queues of the contract.
pub const CONSUMER_QUEUES: [ConsumerQueue; 3] = [ADMIN_EVENTS, PAYMENTS_EVENTS, PROFILE_EVENTS];

/// Binding keys of every gateway replica's queue.
pub const GATEWAY_BINDINGS: [&str; 3] = ["payments.#", "auth.#", "admin.#"];

/// A process that talks to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Auth,
    Payments,
    Admin,
    Profile,
    Gateway,
    /// The operator CLI's `dlq` commands.
    DlqCli,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::Auth,
        Service::Payments,
        Service::Admin,
        Service::Profile,
        Service::Gateway,
        Service::DlqCli,
    ];

    /// Broker user name (events.md §1.3).
    pub fn user(self) -> &'static str {
        match self {
            Service::Auth => "auth",
            Service::Payments => "payments",
            Service::Admin => "admin",
            Service::Profile => "profile",
            Service::Gateway => "gateway",
            Service::DlqCli => "operator",
        }
    }

    /// The durable queue this service consumes, if any.
    pub fn consumer_queue(self) -> Option<ConsumerQueue> {
        match self {
            Service::Payments => Some(PAYMENTS_EVENTS),
            Service::Admin => Some(ADMIN_EVENTS),
            Service::Profile => Some(PROFILE_EVENTS),
            Service::Auth | Service::Gateway | Service::DlqCli => None,
        }
    }

    /// Whether it publishes through an outbox relay (and so declares `events`).
    pub fn produces(self) -> bool {
        matches!(
            self,
            Service::Auth | Service::Payments | Service::Admin | Service::Profile
        )
    }
}

/// `events` (topic, durable).
pub fn events_exchange() -> ExchangeDecl {
    ExchangeDecl {
        name: EVENTS_EXCHANGE,
        kind: ExchangeKind::Topic,
        durable: true,
    }
}

/// `events.dlx` (direct, durable).
pub fn dlx_exchange() -> ExchangeDecl {
    ExchangeDecl {
        name: DLX_EXCHANGE,
        kind: ExchangeKind::Direct,
        durable: true,
    }
}

fn s(v: &str) -> ArgValue {
    ArgValue::Str(v.to_owned())
}

/// What a producer declares: only the `events` exchange.
pub fn producer_declarations() -> Declarations {
    Declarations {
        exchanges: vec![events_exchange()],
        ..Declarations::default()
    }
}

/// What the owner of `queue` declares: `events`, `events.dlx`, the queue with its bindings,
/// its three retry queues and its DLQ bound on `events.dlx`.
pub fn consumer_declarations(queue: &ConsumerQueue) -> Declarations {
    let name = queue.name.to_string();
    let dlq = queue.dlq();
    let mut queues = vec![QueueDecl {
        name: name.clone(),
        durable: true,
        exclusive: false,
        auto_delete: false,
        arguments: vec![
            ("x-queue-type", s("quorum")),
            ("x-dead-letter-exchange", s(DLX_EXCHANGE)),
            ("x-dead-letter-routing-key", s(&dlq)),
            ("x-dead-letter-strategy", s("at-least-once")),
            ("x-overflow", s("reject-publish")),
            ("x-delivery-limit", ArgValue::Int(DELIVERY_LIMIT)),
        ],
    }];
    for (i, ttl) in RETRY_DELAYS_MS.iter().enumerate() {
        queues.push(QueueDecl {
            name: queue.retry_queue(i + 1),
            durable: true,
            exclusive: false,
            auto_delete: false,
            arguments: vec![
                ("x-message-ttl", ArgValue::Int(*ttl)),
                ("x-dead-letter-exchange", s(DEFAULT_EXCHANGE)),
                ("x-dead-letter-routing-key", s(&name)),
            ],
        });
    }
    queues.push(QueueDecl {
        name: dlq.clone(),
        durable: true,
        exclusive: false,
        auto_delete: false,
        arguments: vec![("x-queue-type", s("quorum"))],
    });
    let mut bindings: Vec<BindingDecl> = queue
        .bindings
        .iter()
        .map(|key| BindingDecl {
            exchange: EVENTS_EXCHANGE,
            queue: name.clone(),
            routing_key: (*key).to_owned(),
        })
        .collect();
    bindings.push(BindingDecl {
        exchange: DLX_EXCHANGE,
        queue: dlq.clone(),
        routing_key: dlq,
    });
    Declarations {
        exchanges: vec![events_exchange(), dlx_exchange()],
        queues,
        bindings,
    }
}

/// `gateway.ws.<instance-id>`.
pub fn gateway_queue_name(instance_id: &str) -> String {
    format!("gateway.ws.{instance_id}")
}

/// What one gateway replica declares: `events` and its exclusive, auto-delete queue.
pub fn gateway_declarations(instance_id: &str) -> Declarations {
    let name = gateway_queue_name(instance_id);
    Declarations {
        exchanges: vec![events_exchange()],
        queues: vec![QueueDecl {
            name: name.clone(),
            durable: false,
            exclusive: true,
            auto_delete: true,
            arguments: vec![
                ("x-max-length", ArgValue::Int(10_000)),
                ("x-overflow", s("drop-head")),
                ("x-message-ttl", ArgValue::Int(30_000)),
            ],
        }],
        bindings: GATEWAY_BINDINGS
            .iter()
            .map(|key| BindingDecl {
                exchange: EVENTS_EXCHANGE,
                queue: name.clone(),
                routing_key: (*key).to_owned(),
            })
            .collect(),
    }
}

/// Everything `service` owns and declares. The gateway's queue needs its instance id, so
/// for [`Service::Gateway`] this gives only the exchange; use [`gateway_declarations`].
/// Deployment tooling declaring in advance uses this for the durable part.
pub fn service_declarations(service: Service) -> Declarations {
    let mut decls = if service.produces() {
        producer_declarations()
    } else {
        Declarations::default()
    };
    if let Some(queue) = service.consumer_queue() {
        decls.merge(consumer_declarations(&queue));
    }
    if service == Service::Gateway {
        decls.merge(producer_declarations());
    }
    decls
}

/// Regexes of one broker user on virtual host `/` (events.md §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// The permission regexes of `service`'s broker user.
pub fn permissions(service: Service) -> Permissions {
    let owned = |prefix: &str| Permissions {
        configure: format!(r"^(events|events\.dlx|{prefix}\.events.*)$"),
        write: format!(r"^(events|events\.dlx|amq\.default|{prefix}\.events.*)$"),
        read: format!(r"^(events|events\.dlx|{prefix}\.events.*)$"),
    };
    match service {
        Service::Auth => Permissions {
            configure: "^events$".into(),
            write: "^events$".into(),
            read: "^$".into(),
        },
        Service::Payments => owned("payments"),
        Service::Admin => owned("admin"),
        Service::Profile => owned("profile"),
        Service::Gateway => Permissions {
            configure: r"^(events|gateway\.ws\..*)$".into(),
            write: r"^gateway\.ws\..*$".into(),
            read: r"^(events|gateway\.ws\..*)$".into(),
        },
        Service::DlqCli => Permissions {
            configure: "^$".into(),
            write: r"^(amq\.default|events\.dlx)$".into(),
            read: r"^.*\.dlq$".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_queue_has_contract_arguments() {
        let d = consumer_declarations(&PAYMENTS_EVENTS);
        let names: Vec<_> = d.queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "payments.events",
                "payments.events.retry.1",
                "payments.events.retry.2",
                "payments.events.retry.3",
                "payments.events.dlq"
            ]
        );
        let main = &d.queues[0];
        assert!(
            main.arguments
                .contains(&("x-dead-letter-routing-key", s("payments.events.dlq")))
        );
        assert!(
            main.arguments
                .contains(&("x-delivery-limit", ArgValue::Int(10)))
        );
        assert_eq!(
            d.queues[3].arguments[0],
            ("x-message-ttl", ArgValue::Int(4000))
        );
        assert_eq!(
            d.queues[2].arguments[2],
            ("x-dead-letter-routing-key", s("payments.events"))
        );
        assert_eq!(
            d.bindings.last(),
            Some(&BindingDecl {
                exchange: DLX_EXCHANGE,
                queue: "payments.events.dlq".into(),
                routing_key: "payments.events.dlq".into()
            })
        );
    }

    #[test]
    fn producer_only_declares_events() {
        let d = service_declarations(Service::Auth);
        assert_eq!(d.exchanges, vec![events_exchange()]);
        assert!(d.queues.is_empty());
    }

    #[test]
    fn permission_regexes_match_table() {
        assert_eq!(
            permissions(Service::Admin).write,
            r"^(events|events\.dlx|amq\.default|admin\.events.*)$"
        );
        assert_eq!(permissions(Service::DlqCli).read, r"^.*\.dlq$");
    }
}
