//! Keeps each service's OpenAPI document honest (api.md §8.3): a route table that remembers the
//! paths it serves, and the checks its test runs — the document describes exactly the served
//! public routes, and over HTTP every documented operation is routed while every other method
//! on a documented path answers 405. Also the `bearerAuth` scheme every document declares.

use std::{collections::BTreeSet, future::Future};

use axum::{Router, routing::MethodRouter};
use http::{Method, StatusCode};
use serde_json::Value;

/// Declares the `bearerAuth` security scheme (an EdDSA-signed JWT access token, api.md §2) that
/// every service's operations name in `security(("bearerAuth" = []))`.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Makes every `operationId` unique: an operation documented once for several methods (`PUT`
/// and `PATCH` of one change) gets the method appended on all but the first, since generated
/// clients and fuzzers key operations by it.
pub struct UniqueOperationIds;

impl utoipa::Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut seen = BTreeSet::new();
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, op) in ops {
                let Some(op) = op.as_mut() else { continue };
                if let Some(id) = op.operation_id.as_mut()
                    && !seen.insert(id.clone())
                {
                    id.push('_');
                    id.push_str(method);
                    seen.insert(id.clone());
                }
            }
        }
    }
}

/// The `pagination` object of every list answer (api.md §1.6), as the services' documents
/// describe it (documentation only: handlers build their JSON directly).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(dead_code, reason = "documentation only")]
pub struct Pagination {
    page: i64,
    limit: i64,
    total: i64,
    total_pages: i64,
}

/// One violated rule in a `VALIDATION_ERROR`'s `details` (api.md §1.5), as the services'
/// documents describe it (documentation only).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct FieldError {
    field: String,
    message: String,
}

/// Declares the documentation type of a success envelope `{success: true, data: <$data>}`
/// (api.md §1.3) for a service's utoipa document: `openapi_envelope!(UserEnvelope, User, "…");`.
#[macro_export]
macro_rules! openapi_envelope {
    ($name:ident, $data:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(::utoipa::ToSchema)]
        pub struct $name {
            /// Always `true`.
            success: bool,
            data: $data,
        }
    };
}

/// The methods an operation may use; a path item's other keys (`parameters`, `summary`) are not
/// operations.
pub const METHODS: [Method; 5] = [
    Method::GET,
    Method::PUT,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
];

/// A router under construction together with every path registered on it, so the OpenAPI test
/// compares the document with what is actually served instead of a hand-kept list.
pub struct RouteTable<S> {
    router: Router<S>,
    paths: Vec<&'static str>,
}

impl<S: Clone + Send + Sync + 'static> Default for RouteTable<S> {
    fn default() -> Self {
        Self {
            router: Router::new(),
            paths: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> RouteTable<S> {
    #[must_use]
    pub fn route(mut self, path: &'static str, method_router: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, method_router);
        self.paths.push(path);
        self
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }

    /// Every registered path, internal ones and `/openapi.json` included.
    #[must_use]
    pub fn paths(&self) -> &[&'static str] {
        &self.paths
    }

    /// The paths the public document must describe: not `/internal/*` (never routed by the
    /// gateway) and not the document itself.
    #[must_use]
    pub fn public_paths(&self) -> BTreeSet<String> {
        self.paths
            .iter()
            .filter(|p| !p.starts_with("/internal") && **p != "/openapi.json")
            .map(|p| shape(p))
            .collect()
    }
}

/// `/a/{x}/b` → `/a/{}/b`: parameter names are not part of what is served.
#[must_use]
pub fn shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// A concrete URL path for a template: a value that passes routing, whatever the handler then
/// says about it.
#[must_use]
pub fn concrete(path: &str) -> String {
    shape(path).replace("{}", "probe-1")
}

/// Every error answer is the envelope of api.md §1.3, and each document names its schema so.
pub const ERROR_ENVELOPE: &str = "#/components/schemas/ErrorEnvelope";

/// The documented operations as `(method, shaped path)`.
pub type Operations = BTreeSet<(Method, String)>;

/// Reads a document's operations and lists what is wrong with it against the served public
/// paths: a path documented but not served or served but not documented, an undeclared or
/// extra path parameter, an operation without a success response, an error response that is not
/// the [`ERROR_ENVELOPE`], a `$ref` that points nowhere. An empty list means the document
/// matches.
#[must_use]
pub fn check_document(doc: &Value, served: &BTreeSet<String>) -> (Operations, Vec<String>) {
    let mut ops = Operations::new();
    let mut problems = Vec::new();
    let mut operation_ids = BTreeSet::new();
    if doc["openapi"] != "3.1.0" {
        problems.push(format!("openapi version {} is not 3.1.0", doc["openapi"]));
    }
    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    for (path, item) in paths {
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for method in &METHODS {
            let Some(op) = item.get(method.as_str().to_lowercase()) else {
                continue;
            };
            ops.insert((method.clone(), shape(path)));
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .chain(item["parameters"].as_array())
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            if declared != templated {
                problems.push(format!(
                    "{method} {path}: path parameters {declared:?}, template has {templated:?}"
                ));
            }
            match op["operationId"].as_str() {
                None => problems.push(format!("{method} {path}: no operationId")),
                Some(id) if !operation_ids.insert(id.to_owned()) => {
                    problems.push(format!("{method} {path}: operationId {id} is used twice"));
                }
                Some(_) => {}
            }
            let responses = op["responses"].as_object().unwrap_or(&empty);
            if !responses.keys().any(|s| s.starts_with('2')) {
                problems.push(format!("{method} {path}: no success response"));
            }
            for (status, r) in responses {
                let is_error = status.starts_with('4') || status.starts_with('5');
                let schema = &r["content"]["application/json"]["schema"]["$ref"];
                if is_error && schema != ERROR_ENVELOPE {
                    problems.push(format!("{method} {path} {status}: not the error envelope"));
                }
            }
        }
    }
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for r in refs {
        let target = r
            .strip_prefix("#/")
            .map(|path| path.split('/').fold(doc, |node, part| &node[part]));
        if target.is_none_or(Value::is_null) {
            problems.push(format!("{r} does not resolve"));
        }
    }
    let documented: BTreeSet<String> = ops.iter().map(|(_, p)| p.clone()).collect();
    for p in documented.difference(served) {
        problems.push(format!("{p} is documented but not served"));
    }
    for p in served.difference(&documented) {
        problems.push(format!("{p} is served but not documented"));
    }
    (ops, problems)
}

fn collect_refs<'a>(node: &'a Value, out: &mut Vec<&'a str>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(r) if key == "$ref" => out.push(r),
                    _ => collect_refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Calls every method of [`METHODS`] on every documented path through `call` (which answers the
/// status and the envelope's error code, empty when there is none) and lists the mismatches: a
/// documented operation that is not routed (405 or the router's `NOT_FOUND`), or a method the
/// document leaves out that does not answer 405.
pub async fn probe<F, Fut>(ops: &Operations, mut call: F) -> Vec<String>
where
    F: FnMut(Method, String) -> Fut,
    Fut: Future<Output = (StatusCode, String)>,
{
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    let mut problems = Vec::new();
    for path in paths {
        for method in &METHODS {
            let (status, code) = call(method.clone(), concrete(path)).await;
            if ops.contains(&(method.clone(), path.clone())) {
                if status == StatusCode::METHOD_NOT_ALLOWED || code == "NOT_FOUND" {
                    problems.push(format!(
                        "{method} {path} is documented but not served ({status} {code})"
                    ));
                }
            } else if status != StatusCode::METHOD_NOT_ALLOWED {
                problems.push(format!(
                    "{method} {path} is served but not documented ({status})"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn served(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| shape(p)).collect()
    }

    fn doc() -> Value {
        json!({
            "openapi": "3.1.0",
            "components": {"schemas": {"ErrorEnvelope": {"type": "object"}}},
            "paths": {
                "/api/things/{id}": {
                    "get": {
                        "operationId": "get_thing",
                        "parameters": [{"in": "path", "name": "id"}],
                        "responses": {
                            "200": {"description": "ok"},
                            "404": {"description": "not found", "content": {"application/json":
                                {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
                        }
                    }
                }
            }
        })
    }

    #[test]
    fn shapes_ignore_parameter_names() {
        assert_eq!(shape("/a/{id}/b/{key}"), "/a/{}/b/{}");
        assert_eq!(concrete("/a/{id}"), "/a/probe-1");
    }

    #[test]
    fn table_keeps_public_paths_only() {
        let t: RouteTable<()> = RouteTable::default()
            .route("/openapi.json", axum::routing::get(|| async { "" }))
            .route("/api/x/{id}", axum::routing::get(|| async { "" }))
            .route("/internal/x", axum::routing::get(|| async { "" }));
        assert_eq!(t.paths().len(), 3);
        assert_eq!(t.public_paths(), served(&["/api/x/{other}"]));
    }

    #[test]
    fn a_matching_document_has_no_problems() {
        let (ops, problems) = check_document(&doc(), &served(&["/api/things/{thing}"]));
        assert!(problems.is_empty(), "{problems:?}");
        assert!(ops.contains(&(Method::GET, "/api/things/{}".to_owned())));
    }

    #[test]
    fn every_kind_of_drift_is_reported() {
        let mut d = doc();
        d["paths"]["/api/things/{id}"]["put"] = d["paths"]["/api/things/{id}"]["get"].clone();
        d["paths"]["/api/things/{id}"]["get"]["parameters"] = json!([]);
        d["paths"]["/api/things/{id}"]["get"]["responses"] = json!({"400": {"description": "bare"}, "409": {"content": {"application/json":
                {"schema": {"$ref": "#/components/schemas/Missing"}}}}});
        let (_, problems) = check_document(&d, &served(&["/api/other"]));
        let text = problems.join("\n");
        for needle in [
            "path parameters",
            "no success response",
            "400: not the error envelope",
            "#/components/schemas/Missing does not resolve",
            "/api/things/{} is documented but not served",
            "/api/other is served but not documented",
            "operationId get_thing is used twice",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[tokio::test]
    async fn probe_reports_unrouted_and_undocumented_methods() {
        let (ops, _) = check_document(&doc(), &served(&["/api/things/{id}"]));
        // GET is routed; PUT is routed but undocumented; the rest answer 405.
        let problems = probe(&ops, |m, path| async move {
            assert_eq!(path, "/api/things/probe-1");
            match m {
                Method::GET | Method::PUT => (StatusCode::OK, String::new()),
                _ => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
            }
        })
        .await;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("PUT /api/things/{} is served but not documented"));
        let problems = probe(&ops, |_, _| async {
            (StatusCode::NOT_FOUND, "NOT_FOUND".to_owned())
        })
        .await;
        assert!(
            problems[0].contains("documented but not served"),
            "{problems:?}"
        );
    }
}
