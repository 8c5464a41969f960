//! GraphQL at the gateway (api.md §9): `POST /graphql` (queries and mutations resolved through
//! the services' REST endpoints), `GET /graphql` (GraphiQL outside production; subscriptions
//! over `graphql-transport-ws` with a WebSocket upgrade), `GET /graphql/schema.graphql` (the
//! SDL), the §9.2 error format for every `/graphql` answer including the edge's rejections,
//! the limits of §9.1 and the `auth` rate bucket for login, register and refreshToken.

pub mod resolvers;
pub mod rest;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::{
    ServerError,
    parser::types::{
        DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
    },
};
use axum::{
    Router,
    body::{Body, Bytes},
    extract::{
        Request, State,
        ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use payplane_kit::{
    ApiError,
    request_id::{RequestId, TraceContext},
};
use serde_json::{Value, json};

use self::{
    resolvers::{Details, Mutation, Query},
    rest::{Caller, Rest, Services},
    subscription::Subscription,
};
use crate::{edge::Client, ratelimit::RateLimiter, ws::WsState};

/// The executable schema.
pub type Schema = async_graphql::Schema<Query, Mutation, Subscription>;

/// Query depth limit (§9.1).
pub const MAX_DEPTH: usize = 10;
/// Selected fields after fragment expansion (§9.1): each field costs 1 in async-graphql's
/// complexity count, fragments expanded, so the complexity limit is exactly this rule.
pub const MAX_FIELDS: usize = 500;
/// Body limit of `POST /graphql` (§9.1).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The schema with the limits of §9.1; introspection off in production.
pub fn schema(production: bool) -> Schema {
    let builder = async_graphql::Schema::build(Query, Mutation, Subscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_FIELDS);
    if production {
        builder.disable_introspection().finish()
    } else {
        builder.finish()
    }
}

/// The SDL of the schema, as committed in `services/gateway/schema.graphql`.
pub fn sdl() -> String {
    schema(false).sdl()
}

/// What the `/graphql` handlers share.
#[derive(Clone)]
pub struct GraphQl {
    schema: Schema,
    services: Arc<Services>,
    limiter: Option<RateLimiter>,
    ws: WsState,
    production: bool,
    sdl: Arc<str>,
}

impl GraphQl {
    pub fn new(
        config: &crate::Config,
        http: reqwest::Client,
        limiter: Option<RateLimiter>,
        ws: WsState,
    ) -> Self {
        let production = config.environment.is_production();
        let schema = schema(production);
        let sdl = schema.sdl().into();
        Self {
            schema,
            services: Arc::new(Services::new(http, config)),
            limiter,
            ws,
            production,
            sdl,
        }
    }
}

/// `/graphql` and `/graphql/schema.graphql`.
pub fn router(gql: GraphQl) -> Router {
    Router::new()
        .route("/graphql", get(get_graphql).post(post_graphql))
        .route("/graphql/schema.graphql", get(get_sdl))
        .with_state(Arc::new(gql))
}

/// A §9.2 error body: `{data: null, errors: [{message, extensions}]}`.
fn error_body(status: u16, code: &str, message: &str, details: Option<Value>) -> Value {
    let request_id = payplane_kit::request_id::current().unwrap_or_default();
    let mut ext = json!({ "code": code, "status": status, "requestId": request_id });
    if let Some(d) = details {
        ext["details"] = d;
    }
    json!({ "data": null, "errors": [{ "message": message, "extensions": ext }] })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut res = (status, bytes).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// An `ApiError` in the GraphQL format, with its status and headers.
fn from_api_error(e: ApiError) -> Response {
    let mut res = json_response(
        e.status,
        &error_body(e.status.as_u16(), e.code, &e.message, e.details),
    );
    for (k, v) in e.headers {
        res.headers_mut().insert(k, v);
    }
    res
}

fn protocol_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &error_body(status.as_u16(), code, message, None))
}

/// Whether a selection set (fragments followed, bounded) selects an auth mutation.
fn walk(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    depth < 8
        && set.items.iter().any(|s| match &s.node {
            Selection::Field(f) => matches!(
                f.node.name.node.as_str(),
                "login" | "register" | "refreshToken"
            ),
            Selection::InlineFragment(f) => walk(doc, &f.node.selection_set.node, depth + 1),
            Selection::FragmentSpread(s) => doc
                .fragments
                .get(&s.node.fragment_name.node)
                .is_some_and(|f| walk(doc, &f.node.selection_set.node, depth + 1)),
        })
}

/// Whether a root selection set (fragments followed, bounded) asks for `__schema`/`__type`.
fn selects_introspection(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    depth < 8
        && set.items.iter().any(|s| match &s.node {
            Selection::Field(f) => matches!(f.node.name.node.as_str(), "__schema" | "__type"),
            Selection::InlineFragment(f) => {
                selects_introspection(doc, &f.node.selection_set.node, depth + 1)
            }
            Selection::FragmentSpread(s) => doc
                .fragments
                .get(&s.node.fragment_name.node)
                .is_some_and(|f| selects_introspection(doc, &f.node.selection_set.node, depth + 1)),
        })
}

/// Whether any operation of the document introspects the schema (refused in production
/// with `GRAPHQL_VALIDATION_FAILED` rather than answered with a silent `null`).
pub fn uses_introspection(doc: &ExecutableDocument) -> bool {
    doc.operations
        .iter()
        .any(|(_, op)| selects_introspection(doc, &op.node.selection_set.node, 0))
}

/// Whether the selected operation runs a `login`, `register` or `refreshToken` mutation
/// (they count against the `auth` bucket too, api.md §3.3).
pub fn uses_auth_bucket(doc: &ExecutableDocument, operation: Option<&str>) -> bool {
    let op = match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    let Some(op) = op else { return false };
    if op.node.ty != OperationType::Mutation {
        return false;
    }
    walk(doc, &op.node.selection_set.node, 0)
}

/// Whether a response holds only request-level (validation) errors: nothing executed.
fn is_validation_failure(res: &async_graphql::Response) -> bool {
    !res.errors.is_empty()
        && res.data == async_graphql::Value::Null
        && res.errors.iter().all(|e| e.path.is_empty() && !has_code(e))
}

fn has_code(e: &ServerError) -> bool {
    e.extensions
        .as_ref()
        .is_some_and(|x| x.get("code").is_some())
}

/// Gives every error the §9.2 extensions: validation failures `GRAPHQL_VALIDATION_FAILED`,
/// other uncoded errors (argument coercion during execution) `VALIDATION_ERROR`.
fn complete_errors(res: &mut async_graphql::Response, request_id: &str, validation: bool) {
    for e in &mut res.errors {
        if has_code(e) {
            continue;
        }
        let (code, status) = if validation {
            ("GRAPHQL_VALIDATION_FAILED", 400)
        } else {
            ("VALIDATION_ERROR", 400)
        };
        let ext = e.extensions.get_or_insert_with(Default::default);
        ext.set("code", code);
        ext.set("status", status);
        ext.set("requestId", request_id.to_owned());
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// `POST /graphql`.
async fn post_graphql(State(gql): State<Arc<GraphQl>>, req: Request) -> Response {
    let json_type = is_json(&req);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return from_api_error(ApiError::payload_too_large(BODY_LIMIT));
    };
    if !bytes.is_empty() && !json_type {
        return from_api_error(ApiError::unsupported_media_type());
    }
    let value: Value = if bytes.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) => return from_api_error(ApiError::invalid_json()),
        }
    };
    if !value.is_object() {
        // A batch array included: one operation per request (§9.1).
        return from_api_error(ApiError::field(
            "body",
            "Body must be a single GraphQL request object",
        ));
    }
    let Ok(mut request) = serde_json::from_value::<async_graphql::Request>(value) else {
        return from_api_error(ApiError::field(
            "body",
            "Body must be {query, operationName?, variables?}",
        ));
    };
    let operation = request.operation_name.clone();
    let auth_bucket = match request.parsed_query() {
        Ok(doc) if gql.production && uses_introspection(doc) => {
            return protocol_error(
                StatusCode::BAD_REQUEST,
                "GRAPHQL_VALIDATION_FAILED",
                "Introspection is disabled",
            );
        }
        Ok(doc) => uses_auth_bucket(doc, operation.as_deref()),
        Err(e) => {
            return protocol_error(StatusCode::BAD_REQUEST, "GRAPHQL_PARSE_FAILED", &e.message);
        }
    };
    let client_ip = Client::of(&parts.extensions).map(|c| c.ip);
    if auth_bucket
        && let (Some(limiter), Some(ip)) = (&gql.limiter, client_ip)
        && let Some(refusal) = limiter.take_auth_only(ip).await
    {
        return from_api_error(refusal);
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.as_str().to_owned())
        .unwrap_or_default();
    let caller = Caller {
        token: payplane_authn::extract::bearer_from_headers(&parts.headers).map(str::to_owned),
        request_id: request_id.clone(),
        traceparent: parts
            .extensions
            .get::<TraceContext>()
            .and_then(|t| t.traceparent.clone()),
        client_ip,
        user_agent: header("user-agent"),
        device_id: header("x-device-id"),
    };
    let rest = Rest {
        services: gql.services.clone(),
        caller: Arc::new(caller),
    };
    // For this request only: a payment asked for twice (aliases, fragments) is fetched once.
    let details = Details::new(rest.clone());
    let request = request.data(rest).data(details);
    let mut res = gql.schema.execute(request).await;
    let validation = is_validation_failure(&res);
    complete_errors(&mut res, &request_id, validation);
    let status = if validation {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let bytes = serde_json::to_vec(&res).unwrap_or_default();
    let mut out = (status, bytes).into_response();
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

/// `GET /graphql`: subscriptions with a WebSocket upgrade; else GraphiQL outside production.
async fn get_graphql(
    State(gql): State<Arc<GraphQl>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: http::HeaderMap,
) -> Response {
    let Ok(upgrade) = upgrade else {
        if gql.production {
            return from_api_error(ApiError::route_not_found(&http::Method::GET, "/graphql"));
        }
        let page = async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("payplane GraphiQL")
            .finish();
        let mut res = Html(page).into_response();
        // GraphiQL's page loads its scripts and styles from a CDN.
        res.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self' 'unsafe-inline' https://unpkg.com; style-src 'self' 'unsafe-inline' https://unpkg.com; img-src 'self' data: https://unpkg.com; font-src 'self' data: https://unpkg.com; connect-src 'self' ws: wss:; frame-ancestors 'none'",
            ),
        );
        return res;
    };
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "graphql-transport-ws");
    if !offered {
        return from_api_error(ApiError::field(
            "Sec-WebSocket-Protocol",
            "Subscriptions need the graphql-transport-ws subprotocol",
        ));
    }
    if gql.ws.hub.is_shutting_down() {
        return from_api_error(ApiError::unavailable("Gateway is shutting down"));
    }
    let (schema, ws) = (gql.schema.clone(), gql.ws.clone());
    crate::ws::small_buffers(upgrade)
        .protocols(["graphql-transport-ws"])
        .max_message_size(BODY_LIMIT)
        .on_upgrade(move |socket| subscription::serve(schema, ws, socket))
}

/// `GET /graphql/schema.graphql`: the SDL.
async fn get_sdl(State(gql): State<Arc<GraphQl>>) -> Response {
    let mut res = gql.sdl.to_string().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// For the gateway's edge layer: an edge rejection of `POST /graphql` (403 origin, 413, 415,
/// 429, …), written in the REST envelope by the edge steps, is rewritten into the GraphQL error
/// format (§9.2). GraphQL answers pass untouched.
pub async fn edge_rejection(res: Response) -> Response {
    if res.status().is_success() || res.status() == StatusCode::SWITCHING_PROTOCOLS {
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let rest: Option<Value> = serde_json::from_slice(&bytes).ok();
    let Some(error) = rest
        .as_ref()
        .filter(|v| v.get("success") == Some(&Value::Bool(false)))
        .and_then(|v| v.get("error"))
    else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let text = |f: &str| error.get(f).and_then(Value::as_str).unwrap_or_default();
    let mut body = error_body(
        parts.status.as_u16(),
        text("code"),
        text("message"),
        error.get("details").cloned(),
    );
    if let Some(id) = error.get("requestId") {
        body["errors"][0]["extensions"]["requestId"] = id.clone();
    }
    let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(q: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(q).unwrap()
    }

    #[test]
    fn auth_mutations_are_recognised() {
        assert!(uses_auth_bucket(
            &doc("mutation { login(input: {email: \"a\", password: \"b\"}) { accessToken } }"),
            None
        ));
        assert!(uses_auth_bucket(
            &doc(
                "mutation M { ...F } fragment F on Mutation { refreshToken(refreshToken: \"x\") { accessToken } }"
            ),
            None
        ));
        assert!(!uses_auth_bucket(&doc("{ me { id } }"), None));
        assert!(!uses_auth_bucket(&doc("mutation { logout }"), None));
        assert!(uses_introspection(&doc("{ __schema { types { name } } }")));
        assert!(uses_introspection(&doc(
            "query { ...I } fragment I on Query { __type(name: \"User\") { name } }"
        )));
        assert!(!uses_introspection(&doc("{ me { __typename id } }")));
        let two = doc(
            "query A { me { id } } mutation B { register(input: {email: \"a\", password: \"b\", name: \"c\"}) { accessToken } }",
        );
        assert!(!uses_auth_bucket(&two, Some("A")));
        assert!(uses_auth_bucket(&two, Some("B")));
    }

    /// The committed SDL is the schema's (run with `UPDATE_SCHEMA=1` to regenerate it).
    #[test]
    fn committed_sdl_matches_the_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let current = sdl();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == current,
            "services/gateway/schema.graphql is stale; regenerate it with UPDATE_SCHEMA=1 cargo test -p payplane-gateway --lib graphql"
        );
    }
}
