//! `GET /openapi.json` (api.md §8.3): raw, equal to `payplane_auth::openapi()`, and describing
//! exactly the served public routes. The served paths come from the router's own route table;
//! each method of each path is probed over HTTP, so neither side can drift silently.

use payplane_auth::testing::TestApp;
use payplane_kit::openapi::{check_document, probe};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn openapi_document_describes_exactly_the_served_routes() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let app = TestApp::spawn().await.expect("spawn auth");
    let http = reqwest::Client::new();

    let res = http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc.get("success").is_none(), "not enveloped");
    assert_eq!(doc, serde_json::to_value(payplane_auth::openapi()).unwrap());
    let bearer = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");

    let table = payplane_auth::routes::table();
    let (ops, problems) = check_document(&doc, &table.public_paths());
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        table.paths().iter().any(|p| p.starts_with("/internal")),
        "the internal routes exist and are left out on purpose"
    );

    let problems = probe(&ops, |method, path| {
        let request = http.request(method, app.url(&path)).json(&json!({}));
        async move {
            let res = request.send().await.unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_owned(),
            )
        }
    })
    .await;
    assert!(problems.is_empty(), "{problems:#?}");
    app.stop().await;
}
