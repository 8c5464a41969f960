//! API documentation (api.md §3.8): fetches each upstream's OpenAPI 3.1 document from
//! `GET <upstream>/openapi.json` at start-up and every refresh period, merges them (colliding
//! component names prefixed with the service, `Auth_User`), adds the gateway's own paths and a
//! `bearerAuth` scheme, and serves Swagger UI (assets vendored, no CDN) at `/api-docs`. The
//! merge is pure; the refresh loop does HTTP I/O.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, RwLock},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// The merged document, replaced whole on each refresh.
#[derive(Clone, Default)]
pub struct Docs(Arc<RwLock<Value>>, bool);

impl Docs {
    /// Whether the document's description links GraphiQL (`GET /graphql`, not in production).
    #[must_use]
    pub fn with_graphiql(self, on: bool) -> Self {
        Self(self.0, on)
    }

    pub fn current(&self) -> Value {
        let mut doc = self.0.read().map_or(Value::Null, |v| v.clone());
        if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
            info.insert("description".into(), Value::String(graphql_note(self.1)));
        }
        doc
    }

    fn set(&self, doc: Value) {
        if let Ok(mut cur) = self.0.write() {
            *cur = doc;
        }
    }

    /// Fetches every upstream's document once, then keeps doing so every `every`.
    pub fn spawn_refresh(
        &self,
        upstreams: Vec<(&'static str, String)>,
        http: reqwest::Client,
        every: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let docs = self.clone();
        docs.set(merge(
            &[],
            &upstreams.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ));
        tokio::spawn(async move {
            loop {
                let fetches = upstreams.iter().map(|(name, base)| {
                    let http = http.clone();
                    async move {
                        let doc = async {
                            let res = http
                                .get(format!("{base}/openapi.json"))
                                .timeout(Duration::from_secs(3))
                                .send()
                                .await
                                .ok()?;
                            if !res.status().is_success() {
                                return None;
                            }
                            res.json::<Value>().await.ok().filter(Value::is_object)
                        }
                        .await;
                        (*name, doc)
                    }
                });
                let results = futures::future::join_all(fetches).await;
                let fetched: Vec<(&str, Value)> = results
                    .iter()
                    .filter_map(|(n, d)| d.clone().map(|d| (*n, d)))
                    .collect();
                let missing: Vec<&str> = results
                    .iter()
                    .filter(|(_, d)| d.is_none())
                    .map(|(n, _)| *n)
                    .collect();
                docs.set(merge(&fetched, &missing));
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        })
    }
}

/// The API description's GraphQL paragraph (api.md §9).
fn graphql_note(graphiql: bool) -> String {
    let mut text = String::from(
        "GraphQL: `POST /graphql` (api.md §9), subscriptions over `graphql-transport-ws` on \
         `GET /graphql`; schema (SDL) at [/graphql/schema.graphql](/graphql/schema.graphql).",
    );
    if graphiql {
        text.push_str(" Explore it in [GraphiQL](/graphql).");
    }
    text
}

fn capitalized(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Merges service documents. Pure.
pub fn merge(docs: &[(&str, Value)], unavailable: &[&str]) -> Value {
    // Which schema names appear in more than one service.
    let mut owners: HashMap<String, usize> = HashMap::new();
    for (_, doc) in docs {
        if let Some(schemas) = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
        {
            for name in schemas.keys() {
                *owners.entry(name.clone()).or_default() += 1;
            }
        }
    }
    let mut paths = Map::new();
    let mut schemas = BTreeMap::new();
    let mut tags = Vec::new();
    for (service, doc) in docs {
        let mut text = doc.to_string();
        let colliding: Vec<&String> = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .map(|s| {
                s.keys()
                    .filter(|k| owners.get(*k).copied().unwrap_or(0) > 1)
                    .collect()
            })
            .unwrap_or_default();
        for name in &colliding {
            text = text.replace(
                &format!("\"#/components/schemas/{name}\""),
                &format!("\"#/components/schemas/{}_{name}\"", capitalized(service)),
            );
        }
        let Ok(doc) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if let Some(p) = doc.get("paths").and_then(Value::as_object) {
            for (k, v) in p {
                paths.insert(k.clone(), v.clone());
            }
        }
        if let Some(s) = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
        {
            for (k, v) in s {
                let name = if colliding.contains(&k) {
                    format!("{}_{k}", capitalized(service))
                } else {
                    k.clone()
                };
                schemas.insert(name, v.clone());
            }
        }
        if let Some(t) = doc.get("tags").and_then(Value::as_array) {
            tags.extend(t.iter().cloned());
        }
    }
    for (path, summary) in [
        ("/health", "Gateway liveness and version"),
        ("/health/live", "Process is up"),
        ("/health/ready", "Upstreams and Redis reachable"),
        ("/metrics", "Prometheus metrics"),
        ("/ws", "WebSocket real-time channel (websocket.md)"),
        (
            "/graphql/schema.graphql",
            "GraphQL schema (SDL, api.md §9.3)",
        ),
    ] {
        paths.insert(
            path.to_owned(),
            json!({ "get": { "tags": ["gateway"], "summary": summary, "responses": { "200": { "description": "OK" } } } }),
        );
    }
    paths.insert(
        "/graphql".to_owned(),
        json!({
            "post": { "tags": ["gateway"], "summary": "GraphQL queries and mutations (api.md §9)",
                      "responses": { "200": { "description": "GraphQL response {data, errors}" } } },
            "get": { "tags": ["gateway"], "summary": "GraphiQL (not in production); subscriptions with a graphql-transport-ws upgrade",
                     "responses": { "200": { "description": "HTML" } } }
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": { "title": "payplane API", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        },
        "tags": tags,
        "x-unavailable-services": unavailable,
    })
}

async fn openapi(State(docs): State<Docs>) -> Response {
    Json(docs.current()).into_response()
}

/// `/api-docs` (Swagger UI) and `/api-docs/openapi.json`.
pub fn router(docs: Docs) -> Router {
    let ui = utoipa_swagger_ui::SwaggerUi::new("/api-docs")
        .config(utoipa_swagger_ui::Config::from("/api-docs/openapi.json"));
    Router::new()
        .route("/api-docs/openapi.json", get(openapi))
        .with_state(docs)
        .merge(ui)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_schemas_are_prefixed_and_refs_follow() {
        let auth = json!({
            "paths": { "/api/auth/me": { "get": { "responses": { "200": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/User" } } } } } } } },
            "components": { "schemas": { "User": { "type": "object" }, "Login": {} } }
        });
        let admin = json!({
            "paths": { "/api/admin/users": { "get": { "responses": { "200": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/User" } } } } } } } },
            "components": { "schemas": { "User": { "type": "object" } } }
        });
        let merged = merge(&[("auth", auth), ("admin", admin)], &["payments"]);
        let schemas = merged
            .pointer("/components/schemas")
            .unwrap()
            .as_object()
            .unwrap();
        assert!(schemas.contains_key("Auth_User"));
        assert!(schemas.contains_key("Admin_User"));
        assert!(schemas.contains_key("Login"));
        assert!(!schemas.contains_key("User"));
        assert_eq!(
            merged.pointer("/paths/~1api~1admin~1users/get/responses/200/content/application~1json/schema/$ref").unwrap(),
            "#/components/schemas/Admin_User"
        );
        assert_eq!(merged["x-unavailable-services"], json!(["payments"]));
        assert!(
            merged
                .pointer("/components/securitySchemes/bearerAuth")
                .is_some()
        );
        assert_eq!(merged["openapi"], "3.1.0");
    }
}
