//! `GET /openapi.json` (api.md §8.3): raw, equal to `payplane_payments::openapi()`, and describing
//! exactly the served public routes. The served paths come from the router's own route table;
//! each method of each path is probed over HTTP, so neither side can drift silently.

use std::collections::BTreeSet;

use payplane_payments::testing::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "PATCH", "DELETE"];

/// `/a/{x}/b` → `/a/{}/b`: parameter names are not part of what is served.
fn shape(path: &str) -> String {
    let mut out = String::new();
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

/// A concrete URL path for a template (values that pass routing, whatever the handler says).
fn concrete(path: &str) -> String {
    shape(path).replace("{}", "probe-1")
}

#[tokio::test]
async fn openapi_document_describes_exactly_the_served_routes() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let app = TestApp::spawn().await.expect("spawn payments");
    let http = reqwest::Client::new();

    let res = http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc.get("success").is_none(), "not enveloped");
    assert_eq!(
        doc,
        serde_json::to_value(payplane_payments::openapi()).unwrap()
    );
    let bearer = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");

    // Documented operations, with their path parameters declared.
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let ops = item.as_object().unwrap();
        for key in ops.keys() {
            let m = key.to_uppercase();
            assert!(METHODS.contains(&m.as_str()), "{path}: unexpected {key}");
            documented.insert((m, shape(path)));
            let op = &item[key];
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let templated: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            assert_eq!(declared, templated, "{key} {path}: path parameters");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{key} {path}: no success response"
            );
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorEnvelope",
                        "{key} {path} {status}"
                    );
                }
            }
        }
    }

    // Served public paths, straight from the router's table.
    let served: BTreeSet<String> = payplane_payments::routes::table()
        .paths
        .into_iter()
        .filter(|p| !p.starts_with("/internal") && *p != "/openapi.json")
        .map(shape)
        .collect();
    let documented_paths: BTreeSet<String> = documented.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(documented_paths, served, "documented paths vs served paths");
    assert!(
        payplane_payments::routes::table()
            .paths
            .iter()
            .any(|p| p.starts_with("/internal")),
        "the internal routes exist and are left out on purpose"
    );

    // Over HTTP: every documented operation is routed, every other method on the path is 405.
    for path in &served {
        for m in METHODS {
            let method = Method::from_bytes(m.as_bytes()).unwrap();
            let res = http
                .request(method, app.url(&concrete(path)))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().unwrap_or("");
            if documented.contains(&(m.to_owned(), path.clone())) {
                assert!(
                    status != StatusCode::METHOD_NOT_ALLOWED && code != "NOT_FOUND",
                    "{m} {path} is documented but not served ({status} {code})"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} is served but not documented"
                );
            }
        }
    }
    app.stop().await;
}
