//! Declares a Queue's topology and creates its least-privilege user through the RabbitMQ
//! management HTTP API (I/O: HTTP). Every call is an idempotent PUT or a set-like POST.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use payplane_events::topology::{ArgValue, Declarations, Permissions};
use serde_json::{Map, Value, json};

/// Failures talking to the management API.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The request did not complete (unreachable, timed out, cut off).
    #[error("{what}: {source}")]
    Request {
        /// What was being done.
        what: String,
        /// Cause.
        source: reqwest::Error,
    },
    /// The broker refused: it answered with an error status.
    #[error("{what}: HTTP {status}: {body}")]
    Refused {
        /// What was being done.
        what: String,
        /// HTTP status.
        status: u16,
        /// Response body (the broker's reason).
        body: String,
    },
    /// The broker has no message count for a quorum queue yet.
    #[error("queue {queue} has no statistics yet; cannot tell whether it is empty")]
    NoStatistics {
        /// The queue.
        queue: String,
    },
}

/// The management API and an administrator's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerTarget {
    /// Base URL, e.g. `http://127.0.0.1:15672`.
    pub management_url: String,
    /// Administrator user.
    pub admin_user: String,
    /// Administrator password.
    pub admin_password: String,
}

/// A change to one broker user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// Create the user, or set its password, with the ownership tag.
    Enable {
        /// User name.
        name: String,
        /// New password.
        password: String,
    },
    /// Add the ownership tag to an existing user, keeping its password (its hash is sent back).
    Adopt {
        /// User name.
        name: String,
    },
    /// Delete the user: its password is refused from now on.
    Disable {
        /// User name.
        name: String,
    },
}

impl From<super::LoginChange> for UserChange {
    fn from(change: super::LoginChange) -> Self {
        match change {
            super::LoginChange::Enable { name, password } => Self::Enable { name, password },
            super::LoginChange::Disable { name } => Self::Disable { name },
        }
    }
}

/// What to declare and whom to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlan {
    /// Virtual host.
    pub vhost: String,
    /// Uid of the owning resource, carried as a user tag ([`owner_tag`]).
    pub uid: String,
    /// Users given the permissions: the active one and one being retired by a rotation.
    pub users: Vec<String>,
    /// Password changes: only on creation, a lost Secret, or a rotation.
    pub user_changes: Vec<UserChange>,
    /// Exchanges, queues and bindings.
    pub declarations: Declarations,
    /// The users' permission regexes on `vhost`.
    pub permissions: Permissions,
    /// Queues not to declare: their arguments on the broker differ (PRECONDITION_FAILED).
    pub skip_queues: BTreeSet<String>,
    /// Bindings on the plan's queues that the spec does not declare.
    pub remove_bindings: Vec<Binding>,
}

/// A binding found on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Source exchange.
    pub source: String,
    /// Destination queue.
    pub queue: String,
    /// Routing key.
    pub routing_key: String,
    /// The management API's key for it (routing key and arguments).
    pub properties_key: String,
}

/// A broker user as the management API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Tags (`administrator`, the ownership tag, ...).
    pub tags: Vec<String>,
}

/// What the broker has of a Queue's users, queues and their bindings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerObserved {
    /// Users by name; absent when they do not exist.
    pub users: BTreeMap<String, UserInfo>,
    /// Arguments of each declared queue that exists.
    pub queue_arguments: BTreeMap<String, Map<String, Value>>,
    /// Bindings whose destination is one of the declared queues (default exchange excluded).
    pub bindings: Vec<Binding>,
}

/// The user tag that marks a broker user as created (owned) by the resource with `uid`.
pub fn owner_tag(uid: &str) -> String {
    format!("payplane-owner-{uid}")
}

/// Why a `Queue` may not touch its user: it belongs to something else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerConflict {
    /// An administrator or management user is never managed.
    #[error("user {0} has management tags; a Queue never manages it")]
    Privileged(String),
    /// Tagged by another resource.
    #[error("user {name} is owned by another resource ({tag})")]
    OwnedByOther {
        /// The user.
        name: String,
        /// The other owner's tag.
        tag: String,
    },
    /// Exists untagged and this resource may not adopt it.
    #[error(
        "user {0} already exists and was not created by this Queue (annotate payplane.dev/adopt=true to take it over)"
    )]
    Unmarked(String),
}

/// Decides whether the resource with `uid` may manage the users of `obs` (pure): its own
/// tag, or no payplane tag when `adopt` holds; never a user with management tags.
pub fn check_ownership(obs: &BrokerObserved, uid: &str, adopt: bool) -> Result<(), BrokerConflict> {
    let ours = owner_tag(uid);
    for (name, user) in &obs.users {
        if user.tags.iter().any(|t| t == &ours) {
            continue;
        }
        if user.tags.iter().any(|t| {
            ["administrator", "monitoring", "policymaker", "management"].contains(&t.as_str())
        }) {
            return Err(BrokerConflict::Privileged(name.clone()));
        }
        if let Some(tag) = user.tags.iter().find(|t| t.starts_with("payplane-owner-")) {
            return Err(BrokerConflict::OwnedByOther {
                name: name.clone(),
                tag: tag.clone(),
            });
        }
        if !adopt {
            return Err(BrokerConflict::Unmarked(name.clone()));
        }
    }
    Ok(())
}

/// One argument of an existing queue that differs from its declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentChange {
    /// The queue.
    pub queue: String,
    /// The argument.
    pub key: String,
    /// Its value on the broker.
    pub broker: Option<Value>,
    /// The value the spec asks for.
    pub wanted: Option<Value>,
}

impl std::fmt::Display for ArgumentChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| {
            v.as_ref()
                .map_or_else(|| "unset".to_owned(), Value::to_string)
        };
        write!(
            f,
            "queue {} has {}={} on the broker, the spec wants {}",
            self.queue,
            self.key,
            show(&self.broker),
            show(&self.wanted)
        )
    }
}

/// The arguments of existing queues that differ from their declarations (pure): RabbitMQ
/// refuses such a redeclaration with `PRECONDITION_FAILED`, so these queues need recreating.
pub fn argument_changes(decls: &Declarations, obs: &BrokerObserved) -> Vec<ArgumentChange> {
    let mut changes = Vec::new();
    for q in &decls.queues {
        let Some(have) = obs.queue_arguments.get(&q.name) else {
            continue;
        };
        let Value::Object(want) = args(&q.arguments) else {
            continue;
        };
        let keys: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
        for key in keys {
            let (b, w) = (have.get(key), want.get(key));
            // The broker reports no type for a classic queue declared without one.
            let classic = |v: Option<&Value>| v.is_none_or(|v| v == "classic");
            if b != w && !(key == "x-queue-type" && classic(b) && classic(w)) {
                changes.push(ArgumentChange {
                    queue: q.name.clone(),
                    key: key.clone(),
                    broker: b.cloned(),
                    wanted: w.cloned(),
                });
            }
        }
    }
    changes
}

/// Bindings on the declared queues that the declarations do not contain (pure).
pub fn stale_bindings(decls: &Declarations, obs: &BrokerObserved) -> Vec<Binding> {
    obs.bindings
        .iter()
        .filter(|b| {
            !decls.bindings.iter().any(|d| {
                d.exchange == b.source && d.queue == b.queue && d.routing_key == b.routing_key
            })
        })
        .cloned()
        .collect()
}

/// Percent-encodes one path segment (vhost `/` becomes `%2F`).
pub fn segment(s: &str) -> String {
    s.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

fn args(arguments: &[(&'static str, ArgValue)]) -> Value {
    let map: Map<String, Value> = arguments
        .iter()
        .map(|(k, v)| {
            let v = match v {
                ArgValue::Str(s) => json!(s),
                ArgValue::Int(i) => json!(i),
            };
            ((*k).to_owned(), v)
        })
        .collect();
    Value::Object(map)
}

async fn call(
    http: &reqwest::Client,
    t: &BrokerTarget,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    what: &str,
) -> Result<u16, BrokerError> {
    let url = format!("{}/api/{path}", t.management_url.trim_end_matches('/'));
    let mut req = http
        .request(method, url)
        .basic_auth(&t.admin_user, Some(&t.admin_password))
        .timeout(std::time::Duration::from_secs(10));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|source| BrokerError::Request {
        what: what.to_owned(),
        source,
    })?;
    let status = resp.status().as_u16();
    if status >= 400 {
        let body = resp.text().await.unwrap_or_default();
        return Err(BrokerError::Refused {
            what: what.to_owned(),
            status,
            body,
        });
    }
    Ok(status)
}

/// GETs `path` as JSON; `None` on 404.
async fn get_json(
    http: &reqwest::Client,
    t: &BrokerTarget,
    path: &str,
    what: &str,
) -> Result<Option<Value>, BrokerError> {
    let url = format!("{}/api/{path}", t.management_url.trim_end_matches('/'));
    let resp = http
        .get(url)
        .basic_auth(&t.admin_user, Some(&t.admin_password))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|source| BrokerError::Request {
            what: what.to_owned(),
            source,
        })?;
    let status = resp.status().as_u16();
    if status == 404 {
        return Ok(None);
    }
    let body = resp.text().await.map_err(|source| BrokerError::Request {
        what: what.to_owned(),
        source,
    })?;
    if status >= 400 {
        return Err(BrokerError::Refused {
            what: what.to_owned(),
            status,
            body,
        });
    }
    Ok(Some(serde_json::from_str(&body).unwrap_or(Value::Null)))
}

/// Tags of a user as the management API reports them (a list, or a comma-separated string
/// on older brokers).
fn tags_of(user: &Value) -> Vec<String> {
    match user.get("tags") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads `users`, the arguments of the declared queues, and the bindings on them.
pub async fn observe(
    http: &reqwest::Client,
    t: &BrokerTarget,
    vhost: &str,
    users: &[String],
    decls: &Declarations,
) -> Result<BrokerObserved, BrokerError> {
    let vh = segment(vhost);
    let mut obs = BrokerObserved::default();
    for name in users {
        let what = format!("reading user {name}");
        if let Some(u) = get_json(http, t, &format!("users/{}", segment(name)), &what).await? {
            obs.users
                .insert(name.clone(), UserInfo { tags: tags_of(&u) });
        }
    }
    // A vhost that does not exist yet has no queues (the queue GETs answer 404).
    for q in &decls.queues {
        let path = format!("queues/{vh}/{}", segment(&q.name));
        let what = format!("reading queue {}", q.name);
        let Some(found) = get_json(http, t, &path, &what).await? else {
            continue;
        };
        let arguments = found
            .get("arguments")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        obs.queue_arguments.insert(q.name.clone(), arguments);
        let what = format!("reading the bindings of {}", q.name);
        let bindings = get_json(http, t, &format!("{path}/bindings"), &what)
            .await?
            .unwrap_or(Value::Null);
        for b in bindings.as_array().into_iter().flatten() {
            let field = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            if field("source").is_empty() {
                continue;
            }
            obs.bindings.push(Binding {
                source: field("source"),
                queue: q.name.clone(),
                routing_key: field("routing_key"),
                properties_key: field("properties_key"),
            });
        }
    }
    Ok(obs)
}

/// Declares the plan's vhost, exchanges, queues (except `skip_queues`) and bindings, removes
/// `remove_bindings`, applies the user changes and sets the users' permissions.
#[expect(
    clippy::too_many_lines,
    reason = "the broker's declarations in their required order (vhost, user, permissions, exchanges, queues, bindings) as one sequence"
)]
pub async fn ensure(
    http: &reqwest::Client,
    t: &BrokerTarget,
    plan: &QueuePlan,
) -> Result<(), BrokerError> {
    use reqwest::Method;
    let vh = segment(&plan.vhost);
    call(
        http,
        t,
        Method::PUT,
        &format!("vhosts/{vh}"),
        Some(json!({})),
        "creating the vhost",
    )
    .await?;
    for ex in &plan.declarations.exchanges {
        call(
            http,
            t,
            Method::PUT,
            &format!("exchanges/{vh}/{}", segment(ex.name)),
            Some(json!({"type": ex.kind.as_str(), "durable": ex.durable, "auto_delete": false, "internal": false, "arguments": {}})),
            &format!("declaring exchange {}", ex.name),
        )
        .await?;
    }
    for q in &plan.declarations.queues {
        if plan.skip_queues.contains(&q.name) {
            continue;
        }
        call(
            http,
            t,
            Method::PUT,
            &format!("queues/{vh}/{}", segment(&q.name)),
            Some(json!({"durable": q.durable, "auto_delete": q.auto_delete, "arguments": args(&q.arguments)})),
            &format!("declaring queue {}", q.name),
        )
        .await?;
    }
    for b in &plan.declarations.bindings {
        if plan.skip_queues.contains(&b.queue) {
            continue;
        }
        call(
            http,
            t,
            Method::POST,
            &format!(
                "bindings/{vh}/e/{}/q/{}",
                segment(b.exchange),
                segment(&b.queue)
            ),
            Some(json!({"routing_key": b.routing_key, "arguments": {}})),
            &format!(
                "binding {} to {} with {}",
                b.queue, b.exchange, b.routing_key
            ),
        )
        .await?;
    }
    for b in &plan.remove_bindings {
        match call(
            http,
            t,
            Method::DELETE,
            &format!(
                "bindings/{vh}/e/{}/q/{}/{}",
                segment(&b.source),
                segment(&b.queue),
                segment(&b.properties_key)
            ),
            None,
            &format!(
                "removing the undeclared binding of {} to {} with {}",
                b.queue, b.source, b.routing_key
            ),
        )
        .await
        {
            Ok(_) | Err(BrokerError::Refused { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let tag = owner_tag(&plan.uid);
    for change in &plan.user_changes {
        match change {
            UserChange::Enable { name, password } => {
                call(
                    http,
                    t,
                    Method::PUT,
                    &format!("users/{}", segment(name)),
                    Some(json!({"password": password, "tags": tag})),
                    &format!("creating user {name}"),
                )
                .await?;
            }
            UserChange::Adopt { name } => {
                let what = format!("reading user {name}");
                let path = format!("users/{}", segment(name));
                if let Some(u) = get_json(http, t, &path, &what).await? {
                    let mut tags = tags_of(&u);
                    tags.push(tag.clone());
                    call(
                        http,
                        t,
                        Method::PUT,
                        &path,
                        Some(json!({
                            "password_hash": u.get("password_hash").cloned().unwrap_or(Value::Null),
                            "hashing_algorithm": u.get("hashing_algorithm").cloned().unwrap_or(Value::Null),
                            "tags": tags.join(","),
                        })),
                        &format!("tagging user {name}"),
                    )
                    .await?;
                }
            }
            UserChange::Disable { name } => {
                match call(
                    http,
                    t,
                    Method::DELETE,
                    &format!("users/{}", segment(name)),
                    None,
                    &format!("deleting user {name}"),
                )
                .await
                {
                    Ok(_) | Err(BrokerError::Refused { status: 404, .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let disabled: BTreeSet<&String> = plan
        .user_changes
        .iter()
        .filter_map(|c| match c {
            UserChange::Disable { name } => Some(name),
            _ => None,
        })
        .collect();
    for user in plan.users.iter().filter(|u| !disabled.contains(u)) {
        call(
            http,
            t,
            Method::PUT,
            &format!("permissions/{vh}/{}", segment(user)),
            Some(json!({"configure": plan.permissions.configure, "write": plan.permissions.write, "read": plan.permissions.read})),
            &format!("setting permissions of {user}"),
        )
        .await?;
    }
    Ok(())
}

/// Deletes the plan's users that carry its tag, and its queues only when they are empty.
pub async fn delete(
    http: &reqwest::Client,
    t: &BrokerTarget,
    plan: &QueuePlan,
) -> Result<(), BrokerError> {
    use reqwest::Method;
    let vh = segment(&plan.vhost);
    let tag = owner_tag(&plan.uid);
    // The owner tag on a user is the proof that this Queue declared what it names, so the
    // users go last: a deletion retried after a failure part-way (a quorum queue without
    // statistics yet, a refused call) finds them still tagged and finishes the queues, where
    // users deleted first made the retry see a conflicting copy and leave the rest behind.
    let mut ours = Vec::new();
    for name in &plan.users {
        let what = format!("reading user {name}");
        let path = format!("users/{}", segment(name));
        if get_json(http, t, &path, &what)
            .await?
            .is_some_and(|u| tags_of(&u).contains(&tag))
        {
            ours.push(path);
        }
    }
    // A Queue that never owned its user (a conflicting copy) declared nothing either.
    if ours.is_empty() {
        return Ok(());
    }
    for q in &plan.declarations.queues {
        if is_quorum(&q.arguments) {
            delete_quorum_queue_if_empty(http, t, &vh, &q.name).await?;
            continue;
        }
        // A non-empty classic queue answers 400 and stays: its messages are data.
        match call(
            http,
            t,
            Method::DELETE,
            &format!("queues/{vh}/{}?if-empty=true", segment(&q.name)),
            None,
            &format!("deleting queue {}", q.name),
        )
        .await
        {
            Ok(_)
            | Err(BrokerError::Refused {
                status: 400 | 404, ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    for path in ours {
        match call(http, t, Method::DELETE, &path, None, "deleting the user").await {
            Ok(_) | Err(BrokerError::Refused { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether a declaration's arguments make it a quorum queue.
fn is_quorum(arguments: &[(&'static str, ArgValue)]) -> bool {
    arguments
        .iter()
        .any(|(k, v)| *k == "x-queue-type" && *v == ArgValue::Str("quorum".into()))
}

/// Deletes a quorum queue when the broker counts no message in it.
///
/// Quorum queues refuse `if-empty` (`400 ... queue.delete operations with if-empty flag set are
/// not supported by quorum queues`), so emptiness is read first. The count comes from the
/// management statistics, refreshed every few seconds (`collect_statistics_interval`, 5 s by
/// default): a message routed within that window can be deleted with the queue. The user is
/// deleted before this runs, so the owning service no longer reads or publishes.
async fn delete_quorum_queue_if_empty(
    http: &reqwest::Client,
    t: &BrokerTarget,
    vh: &str,
    name: &str,
) -> Result<(), BrokerError> {
    let path = format!("queues/{vh}/{}", segment(name));
    let what = format!("reading queue {name}");
    let Some(queue) = get_json(http, t, &path, &what).await? else {
        return Ok(());
    };
    // A body that is not JSON reads as null: no statistics.
    let messages = queue.get("messages").and_then(Value::as_u64);
    match messages {
        Some(0) => {}
        Some(_) => return Ok(()),
        // A queue declared moments ago has no statistics yet: not known to be empty, so the
        // finalizer stays and the deletion is retried.
        None => {
            return Err(BrokerError::NoStatistics {
                queue: name.to_owned(),
            });
        }
    }
    match call(
        http,
        t,
        reqwest::Method::DELETE,
        &path,
        None,
        &format!("deleting queue {name}"),
    )
    .await
    {
        Ok(_) | Err(BrokerError::Refused { status: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use payplane_events::topology::{BindingDecl, QueueDecl};

    fn user(tags: &[&str]) -> UserInfo {
        UserInfo {
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn with_users(users: &[(&str, UserInfo)]) -> BrokerObserved {
        BrokerObserved {
            users: users
                .iter()
                .map(|(n, u)| ((*n).to_owned(), u.clone()))
                .collect(),
            ..BrokerObserved::default()
        }
    }

    #[test]
    fn users_of_another_resource_or_admins_conflict() {
        let ours = owner_tag("u1");
        assert_eq!(check_ownership(&with_users(&[]), "u1", false), Ok(()));
        let obs = with_users(&[("pay", user(&[&ours]))]);
        assert_eq!(check_ownership(&obs, "u1", false), Ok(()));
        let obs = with_users(&[("pay", user(&[&owner_tag("u2")]))]);
        assert!(matches!(
            check_ownership(&obs, "u1", true),
            Err(BrokerConflict::OwnedByOther { .. })
        ));
        let obs = with_users(&[("guest", user(&["administrator"]))]);
        assert_eq!(
            check_ownership(&obs, "u1", true),
            Err(BrokerConflict::Privileged("guest".into()))
        );
        let obs = with_users(&[("pay", user(&[]))]);
        assert!(check_ownership(&obs, "u1", false).is_err());
        assert_eq!(check_ownership(&obs, "u1", true), Ok(()));
    }

    fn decls() -> Declarations {
        Declarations {
            queues: vec![QueueDecl {
                name: "pay.events.retry.1".into(),
                durable: true,
                exclusive: false,
                auto_delete: false,
                arguments: vec![("x-message-ttl", ArgValue::Int(1000))],
            }],
            bindings: vec![BindingDecl {
                exchange: "events",
                queue: "pay.events.retry.1".into(),
                routing_key: "auth.user.*".into(),
            }],
            ..Declarations::default()
        }
    }

    #[test]
    fn changed_arguments_are_named_and_missing_queues_are_not_changes() {
        let mut obs = BrokerObserved::default();
        assert!(argument_changes(&decls(), &obs).is_empty());
        let mut have = Map::new();
        have.insert("x-message-ttl".into(), json!(5000));
        obs.queue_arguments
            .insert("pay.events.retry.1".into(), have);
        let changes = argument_changes(&decls(), &obs);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].to_string(),
            "queue pay.events.retry.1 has x-message-ttl=5000 on the broker, the spec wants 1000"
        );
        let mut same = Map::new();
        same.insert("x-message-ttl".into(), json!(1000));
        same.insert("x-queue-type".into(), json!("classic"));
        obs.queue_arguments
            .insert("pay.events.retry.1".into(), same);
        assert!(argument_changes(&decls(), &obs).is_empty());
    }

    #[test]
    fn only_undeclared_bindings_are_stale() {
        let binding = |key: &str| Binding {
            source: "events".into(),
            queue: "pay.events.retry.1".into(),
            routing_key: key.into(),
            properties_key: key.into(),
        };
        let obs = BrokerObserved {
            bindings: vec![binding("auth.user.*"), binding("admin.#")],
            ..BrokerObserved::default()
        };
        assert_eq!(stale_bindings(&decls(), &obs), vec![binding("admin.#")]);
    }
}
