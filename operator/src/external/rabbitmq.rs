//! Declares a Queue's topology and creates its least-privilege user through the RabbitMQ
//! management HTTP API (I/O: HTTP). Every call is an idempotent PUT or a set-like POST.

use std::fmt::Write;

use payplane_events::topology::{ArgValue, Declarations, Permissions};
use serde_json::{Map, Value, json};

/// Failures talking to the management API.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The request did not complete.
    #[error("{what}: {source}")]
    Http {
        /// What was being done.
        what: String,
        /// Cause.
        source: reqwest::Error,
    },
    /// The broker answered with an error status.
    #[error("{what}: HTTP {status}: {body}")]
    Status {
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

/// What to declare and whom to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlan {
    /// Virtual host.
    pub vhost: String,
    /// The service's user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// Exchanges, queues and bindings.
    pub declarations: Declarations,
    /// The user's permission regexes on `vhost`.
    pub permissions: Permissions,
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
    let resp = req.send().await.map_err(|source| BrokerError::Http {
        what: what.to_owned(),
        source,
    })?;
    let status = resp.status().as_u16();
    if status >= 400 {
        let body = resp.text().await.unwrap_or_default();
        return Err(BrokerError::Status {
            what: what.to_owned(),
            status,
            body,
        });
    }
    Ok(status)
}

/// Declares the plan's vhost, exchanges, queues and bindings, then its user and permissions.
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
    call(
        http,
        t,
        Method::PUT,
        &format!("users/{}", segment(&plan.user)),
        Some(json!({"password": plan.password, "tags": ""})),
        &format!("creating user {}", plan.user),
    )
    .await?;
    call(
        http,
        t,
        Method::PUT,
        &format!("permissions/{vh}/{}", segment(&plan.user)),
        Some(json!({"configure": plan.permissions.configure, "write": plan.permissions.write, "read": plan.permissions.read})),
        &format!("setting permissions of {}", plan.user),
    )
    .await?;
    Ok(())
}

/// Deletes the plan's user, and its queues only when they are empty.
pub async fn delete(
    http: &reqwest::Client,
    t: &BrokerTarget,
    plan: &QueuePlan,
) -> Result<(), BrokerError> {
    use reqwest::Method;
    let vh = segment(&plan.vhost);
    match call(
        http,
        t,
        Method::DELETE,
        &format!("users/{}", segment(&plan.user)),
        None,
        "deleting the user",
    )
    .await
    {
        Ok(_) | Err(BrokerError::Status { status: 404, .. }) => {}
        Err(e) => return Err(e),
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
            | Err(BrokerError::Status {
                status: 400 | 404, ..
            }) => {}
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
    let url = format!("{}/api/{path}", t.management_url.trim_end_matches('/'));
    let resp = http
        .get(url)
        .basic_auth(&t.admin_user, Some(&t.admin_password))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|source| BrokerError::Http {
            what: what.clone(),
            source,
        })?;
    let status = resp.status().as_u16();
    if status == 404 {
        return Ok(());
    }
    let body = resp.text().await.map_err(|source| BrokerError::Http {
        what: what.clone(),
        source,
    })?;
    if status >= 400 {
        return Err(BrokerError::Status { what, status, body });
    }
    let messages = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|q| q.get("messages").and_then(Value::as_u64));
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
        Ok(_) | Err(BrokerError::Status { status: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
