//! Every event profile writes into its outbox matches the committed JSON Schema of its routing
//! key (events.md §7.6). The real service (PostgreSQL, Redis, the real auth service for tokens)
//! is driven through both endpoints that produce `profile.profile.updated` — profile fields and
//! preferences — and then every outbox row is validated.

use payplane_auth::testing::TestApp as AuthApp;
use payplane_events::testing::validate_outbox;
use payplane_profile::testing::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn every_profile_event_in_the_outbox_matches_its_schema() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let auth = AuthApp::spawn().await.expect("spawn auth");
    let profile = TestApp::spawn(&auth.base_url).await.expect("spawn profile");
    let http = reqwest::Client::new();
    let email = format!("schema-{}@example.com", Uuid::new_v4().simple());
    let res = http
        .post(auth.url("/api/auth/register"))
        .json(&json!({"email": email, "password": "TestPassword123!", "name": "Schema User"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let reg: Value = res.json().await.unwrap();
    let token = reg["data"]["accessToken"].as_str().unwrap().to_owned();

    let put = |path: &'static str, body: Value| {
        let req = http.put(profile.url(path)).bearer_auth(&token).json(&body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }
    };
    // Every profile field set, then some cleared; then preferences, including nested flags.
    put(
        "/api/profile",
        json!({"phone": "+1 555 010 0000", "address": "1 Main St", "bio": "Hello",
               "avatarUrl": "https://cdn.example.com/a.png"}),
    )
    .await;
    put("/api/profile", json!({"bio": null, "avatarUrl": ""})).await;
    put(
        "/api/profile/preferences",
        json!({"theme": "dark", "language": "pt-br", "currency": "eur",
               "timezone": "America/New_York", "notifications": {"sms": true}}),
    )
    .await;
    put("/api/profile/preferences", json!({"theme": "light"})).await;

    // Committed before each response: validate every row.
    let rows = payplane_bus::outbox::all_rows(&profile.db.pool)
        .await
        .unwrap();
    let seen = validate_outbox("profile", &rows).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(seen["profile.profile.updated"], 4, "{seen:?}");
    let preferences: Vec<&Value> = rows
        .iter()
        .map(|(_, e)| &e["data"]["changedPreferences"])
        .collect();
    assert_eq!(
        preferences,
        [
            &json!([]),
            &json!([]),
            &json!(["theme", "language", "currency", "timezone", "notifications"]),
            &json!(["theme"]),
        ]
    );
}
