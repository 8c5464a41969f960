//! The HTTP face of the fake API server: parses Kubernetes REST paths and query parameters,
//! dispatches to the [`Store`](crate::store::Store) and streams watches. Does network I/O.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::Shared;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ApiError, PatchKind, ResourceType};

/// The router answering every path.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// What a request path addresses.
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn parse_path(path: &str) -> Result<Target, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    };
    let (group, version, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found()),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some((*ns).to_owned()), tail),
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some((*name).to_owned()), None),
        [plural, name, sub] => (*plural, Some((*name).to_owned()), Some(*sub)),
        _ => return Err(not_found()),
    };
    if sub.is_some_and(|s| s != "status") {
        return Err(not_found());
    }
    Ok(Target {
        rt: ResourceType {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
        },
        namespace,
        name,
        status: sub.is_some(),
    })
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn error_response(e: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_status(),
    )
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    match dispatch(&shared, &method, &uri, &headers, &body) {
        Ok(Reply::Json(code, v)) => json_response(code, &v),
        Ok(Reply::Watch(stream)) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Err(e) => error_response(&e),
    }
}

enum Reply {
    Json(StatusCode, Value),
    Watch(futures::stream::BoxStream<'static, Result<Bytes, Infallible>>),
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, "BadRequest", format!("invalid body: {e}")))
}

fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Reply, ApiError> {
    let target = parse_path(uri.path())?;
    let query = parse_query(uri);
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::new(400, "BadRequest", e.to_string()))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::new(400, "BadRequest", e.to_string()))?;
    let ns = target.namespace.clone().unwrap_or_default();
    let rt = &target.rt;
    let mut store = shared.store.lock().unwrap_or_else(PoisonError::into_inner);
    match (method, &target.name) {
        (&Method::GET, None) => {
            let watching = query.get("watch").is_some_and(|w| w == "true" || w == "1");
            if watching {
                let from = query
                    .get("resourceVersion")
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        v.parse::<u64>().map_err(|_| {
                            ApiError::new(400, "BadRequest", "invalid resourceVersion")
                        })
                    })
                    .transpose()?;
                let timeout = query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse::<u64>().ok())
                    .map_or(Duration::from_secs(290), Duration::from_secs);
                return match store.watch(rt, target.namespace.as_deref(), from, &labels, &fields) {
                    Ok((backlog, rx)) => Ok(Reply::Watch(watch_stream(
                        backlog,
                        rx,
                        rt.clone(),
                        target.namespace.clone(),
                        labels,
                        fields,
                        timeout,
                    ))),
                    // The real server reports an expired version inside the stream.
                    Err(e) if e.code == 410 => {
                        let mut line = serde_json::to_vec(
                            &serde_json::json!({"type": "ERROR", "object": e.to_status()}),
                        )
                        .unwrap_or_default();
                        line.push(b'\n');
                        let s = futures::stream::iter([Ok(Bytes::from(line))]);
                        Ok(Reply::Watch(Box::pin(s)))
                    }
                    Err(e) => Err(e),
                };
            }
            Ok(Reply::Json(
                StatusCode::OK,
                store.list(rt, target.namespace.as_deref(), &labels, &fields),
            ))
        }
        (&Method::GET, Some(name)) => Ok(Reply::Json(StatusCode::OK, store.get(rt, &ns, name)?)),
        (&Method::POST, None) => {
            let v = store.create(rt, &ns, parse_body(body)?)?;
            Ok(Reply::Json(StatusCode::CREATED, v))
        }
        (&Method::PUT, Some(name)) => {
            let v = store.replace(rt, &ns, name, parse_body(body)?, target.status)?;
            Ok(Reply::Json(StatusCode::OK, v))
        }
        (&Method::PATCH, Some(name)) => {
            let ctype = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let kind = if ctype.starts_with("application/apply-patch") {
                let manager = query.get("fieldManager").cloned().ok_or_else(|| {
                    ApiError::new(400, "BadRequest", "PATCH with apply requires fieldManager")
                })?;
                PatchKind::Apply(manager)
            } else if ctype.starts_with("application/json-patch") {
                PatchKind::Json
            } else {
                PatchKind::Merge
            };
            let v = store.patch(rt, &ns, name, &kind, &parse_body(body)?, target.status)?;
            Ok(Reply::Json(StatusCode::OK, v))
        }
        (&Method::DELETE, Some(name)) => {
            Ok(Reply::Json(StatusCode::OK, store.delete(rt, &ns, name)?))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}

struct WatchState {
    backlog: std::vec::IntoIter<Bytes>,
    rx: tokio::sync::broadcast::Receiver<Arc<crate::store::WatchRecord>>,
    rt: ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    deadline: tokio::time::Instant,
    done: bool,
}

fn watch_stream(
    backlog: Vec<Bytes>,
    rx: tokio::sync::broadcast::Receiver<Arc<crate::store::WatchRecord>>,
    rt: ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    timeout: Duration,
) -> futures::stream::BoxStream<'static, Result<Bytes, Infallible>> {
    let state = WatchState {
        backlog: backlog.into_iter(),
        rx,
        rt,
        namespace,
        labels,
        fields,
        deadline: tokio::time::Instant::now() + timeout,
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        if let Some(line) = st.backlog.next() {
            return Some((Ok(line), st));
        }
        loop {
            match tokio::time::timeout_at(st.deadline, st.rx.recv()).await {
                Err(_) | Ok(Err(RecvError::Closed)) => return None,
                Ok(Err(RecvError::Lagged(_))) => {
                    // This watcher fell behind the bounded channel: tell it to relist.
                    let e = ApiError::new(
                        410,
                        "Expired",
                        "watch fell behind; too old resource version",
                    );
                    let mut line = serde_json::to_vec(
                        &serde_json::json!({"type": "ERROR", "object": e.to_status()}),
                    )
                    .unwrap_or_default();
                    line.push(b'\n');
                    st.done = true;
                    return Some((Ok(Bytes::from(line)), st));
                }
                Ok(Ok(record)) => {
                    if record.matches(&st.rt, st.namespace.as_deref(), &st.labels, &st.fields) {
                        let line = record.line.clone();
                        return Some((Ok(line), st));
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_are_parsed() -> Result<(), ApiError> {
        let t = parse_path("/apis/apps/v1/namespaces/ns/deployments/web/status")?;
        assert_eq!(
            (t.rt.api_version().as_str(), t.rt.plural.as_str()),
            ("apps/v1", "deployments")
        );
        assert_eq!(
            (t.namespace.as_deref(), t.name.as_deref(), t.status),
            (Some("ns"), Some("web"), true)
        );
        let t = parse_path("/api/v1/namespaces/ns")?;
        assert_eq!(
            (t.rt.plural.as_str(), t.namespace, t.name.as_deref()),
            ("namespaces", None, Some("ns"))
        );
        assert!(parse_path("/apis/apps/v1/namespaces/ns/deployments/web/scale").is_err());
        let q = parse_query(&Uri::from_static("/x?labelSelector=a%3Db%2Cc&watch=1"));
        assert_eq!(q.get("labelSelector").map(String::as_str), Some("a=b,c"));
        Ok(())
    }
}
