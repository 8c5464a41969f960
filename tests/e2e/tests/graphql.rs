//! GraphQL at the gateway (api.md §9, issue #16) against the whole platform: every query and
//! mutation of §9.3, ADMIN fields refused for a customer, REST's validation details, the
//! idempotent replay, the `auth` rate bucket, the limits, parse vs validation errors, the
//! upstream-call bound of a 100-payment list (counted on the gateway's `/metrics`), and live
//! subscriptions over `graphql-transport-ws` fed by the gateway's event bridge.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]

use std::{fmt::Write as _, path::Path, time::Duration};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use http::Method;
use payplane_e2e::{Platform, Session};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest},
};

const NODE: &str = env!("CARGO_BIN_EXE_payplane-e2e-node");
const EVENT_WAIT: Duration = Duration::from_secs(20);

/// One `POST /graphql` answer: HTTP status and the `{data, errors}` body.
#[derive(Debug)]
struct Gql {
    status: u16,
    body: Value,
}

impl Gql {
    fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The first error's `extensions.code` ("" when none).
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
    }

    /// Fails unless there are no errors.
    fn ok(self) -> anyhow::Result<Self> {
        if self.status != 200 || self.body.get("errors").is_some_and(|e| !e.is_null()) {
            bail!("GraphQL call failed ({}): {}", self.status, self.body);
        }
        Ok(self)
    }
}

async fn gql_at(
    base: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Gql> {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req
        .send()
        .await
        .with_context(|| format!("POST /graphql {query}"))?;
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    Ok(Gql { status, body })
}

/// `graphql_upstream_requests_total{service="payments"}` on the gateway's `/metrics`.
async fn upstream_calls(base: &str, service: &str) -> anyhow::Result<u64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    let prefix = format!("graphql_upstream_requests_total{{service=\"{service}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a counter"
            )]
            let n = v as u64;
            n
        }))
}

const AUTH_FIELDS: &str =
    "user { id email name role createdAt updatedAt } accessToken refreshToken expiresIn sessionId";
const PAYMENT_FIELDS: &str = "id senderId recipientId amount currency status type description metadata pspTransactionId pspStatus failureReason scheduledFor completedAt createdAt updatedAt sender { id email name } recipient { id email name } transactions { id paymentId status previousStatus statusMessage pspTransactionId actorId actorType metadata createdAt }";

/// A timestamp `days` from now (scheduled payments must lie within the next 365 days).
fn in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "one platform, every field of §9.3 in order"
)]
async fn every_query_and_mutation_through_graphql() {
    let (platform, api) = Platform::start_default(Path::new(NODE)).await.unwrap();
    let base = platform.gateway_url.clone();
    let run = &platform.run_id;
    let gql = |token: Option<String>, query: String, vars: Value| {
        let base = base.clone();
        async move { gql_at(&base, token.as_deref(), &query, vars).await.unwrap() }
    };

    // register (both), login, refreshToken, me; anonymous me → UNAUTHORIZED.
    let customer_email = format!("gql-customer-{run}@example.com");
    let vendor_email = format!("gql-vendor-{run}@example.com");
    let reg = gql(
        None,
        format!("mutation($in: RegisterInput!) {{ register(input: $in) {{ {AUTH_FIELDS} }} }}"),
        json!({"in": {"email": customer_email, "password": payplane_e2e::PASSWORD,
                      "name": "Gql Customer", "deviceId": "gql-c1", "deviceType": "browser"}}),
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(reg.data()["register"]["user"]["role"], "CUSTOMER");
    assert_eq!(reg.data()["register"]["expiresIn"], "15m");
    let vendor = gql(
        None,
        format!("mutation($in: RegisterInput!) {{ register(input: $in) {{ {AUTH_FIELDS} }} }}"),
        json!({"in": {"email": vendor_email, "password": payplane_e2e::PASSWORD,
                      "name": "Gql Vendor", "role": "VENDOR"}}),
    )
    .await
    .ok()
    .unwrap();
    let vendor = Session::from_auth_result(&vendor.data()["register"]).unwrap();
    let login = gql(
        None,
        format!("mutation {{ login(input: {{email: \"{customer_email}\", password: \"{}\", deviceId: \"gql-c2\"}}) {{ {AUTH_FIELDS} }} }}", payplane_e2e::PASSWORD),
        Value::Null,
    )
    .await
    .ok()
    .unwrap();
    let first = Session::from_auth_result(&login.data()["login"]).unwrap();
    let refreshed = gql(
        None,
        format!("mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ {AUTH_FIELDS} }} }}"),
        json!({"t": first.refresh_token}),
    )
    .await
    .ok()
    .unwrap();
    let customer = Session::from_auth_result(&refreshed.data()["refreshToken"]).unwrap();
    assert_eq!(customer.session_id, first.session_id);
    let me = gql(
        Some(customer.access_token.clone()),
        "{ me { id email name role createdAt updatedAt } }".into(),
        Value::Null,
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(me.data()["me"]["email"], customer_email.as_str());
    let anonymous = gql(None, "{ me { id } }".into(), Value::Null).await;
    assert_eq!(anonymous.status, 200);
    assert_eq!(anonymous.code(), "UNAUTHORIZED");
    assert_eq!(anonymous.body["errors"][0]["extensions"]["status"], 401);
    assert!(anonymous.body["errors"][0]["extensions"]["requestId"].is_string());
    assert_eq!(anonymous.body["data"], Value::Null);
    let admin = api.login(&platform.admin_email, "gql-admin").await.unwrap();
    let (c_tok, a_tok) = (
        Some(customer.access_token.clone()),
        Some(admin.access_token.clone()),
    );

    // createPayment with an idempotencyKey, replayed: the same payment, nothing new.
    let create = format!(
        "mutation($in: CreatePaymentInput!, $key: String) {{ createPayment(input: $in, idempotencyKey: $key) {{ {PAYMENT_FIELDS} }} }}"
    );
    let input = json!({"type": "instant", "amount": "25.00", "description": "GraphQL payment",
                       "recipientId": vendor.user_id, "metadata": {"order": 7}});
    let key = format!("gql-{run}");
    let created = gql(
        c_tok.clone(),
        create.clone(),
        json!({"in": input, "key": key}),
    )
    .await
    .ok()
    .unwrap();
    let payment = created.data()["createPayment"].clone();
    assert_eq!(payment["amount"], "25.00");
    assert_eq!(payment["currency"], "USD");
    assert_eq!(payment["sender"]["email"], customer_email.as_str());
    assert_eq!(payment["recipient"]["id"], vendor.user_id.as_str());
    assert_eq!(payment["metadata"], json!({"order": 7}));
    assert_eq!(payment["transactions"][0]["status"], "pending");
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    let replay = gql(
        c_tok.clone(),
        create.clone(),
        json!({"in": input, "key": key}),
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(replay.data()["createPayment"]["id"], payment_id.as_str());
    let reused = gql(
        c_tok.clone(),
        create.clone(),
        json!({"in": {"type": "instant", "amount": "26.00", "description": "GraphQL payment",
                      "recipientId": vendor.user_id}, "key": key}),
    )
    .await;
    assert_eq!(reused.code(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(reused.body["errors"][0]["extensions"]["status"], 422);
    let listed = api
        .get("/api/payments?limit=100", &customer.access_token)
        .await
        .unwrap();
    assert_eq!(
        listed.data()["pagination"]["total"],
        1,
        "the replay created nothing"
    );

    // An upstream validation error carries REST's exact details.
    let bad = json!({"type": "instant", "amount": "1.234", "description": "",
                     "recipientId": vendor.user_id});
    let rest_bad = api
        .post("/api/payments", Some(&customer.access_token), &bad)
        .await
        .unwrap()
        .expect_status(400)
        .unwrap();
    let gql_bad = gql(c_tok.clone(), create.clone(), json!({"in": bad})).await;
    assert_eq!(gql_bad.status, 200);
    assert_eq!(gql_bad.code(), "VALIDATION_ERROR");
    assert_eq!(gql_bad.body["errors"][0]["extensions"]["status"], 400);
    assert_eq!(
        gql_bad.body["errors"][0]["extensions"]["details"],
        rest_bad.body["error"]["details"]
    );
    assert_eq!(gql_bad.body["data"], Value::Null);

    // payment, payments (with filters), unknown payment → null + PAYMENT_NOT_FOUND.
    let one = gql(
        Some(vendor.access_token.clone()),
        format!("query($id: ID!) {{ payment(id: $id) {{ {PAYMENT_FIELDS} }} }}"),
        json!({"id": payment_id}),
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(one.data()["payment"]["description"], "GraphQL payment");
    let page = gql(
        c_tok.clone(),
        "{ payments(limit: 5, sort: amount, order: asc, type: instant, minAmount: \"1.00\", maxAmount: 100, startDate: \"2020-01-01\") { payments { id amount sender { name } } pagination { page limit total totalPages } } }".into(),
        Value::Null,
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(page.data()["payments"]["pagination"]["total"], 1);
    assert_eq!(page.data()["payments"]["pagination"]["limit"], 5);
    assert_eq!(
        page.data()["payments"]["payments"][0]["sender"]["name"],
        "Gql Customer"
    );
    let missing = gql(
        c_tok.clone(),
        "{ payment(id: \"00000000-0000-4000-8000-000000000000\") { id } me { id } }".into(),
        Value::Null,
    )
    .await;
    assert_eq!(missing.status, 200);
    assert_eq!(missing.data()["payment"], Value::Null);
    assert_eq!(missing.data()["me"]["id"], customer.user_id.as_str());
    assert_eq!(missing.code(), "PAYMENT_NOT_FOUND");
    assert_eq!(missing.body["errors"][0]["path"], json!(["payment"]));

    // updatePayment and updatePaymentStatus on a scheduled (still pending) payment.
    let scheduled = gql(
        c_tok.clone(),
        create.clone(),
        json!({"in": {"type": "scheduled", "amount": 12.5, "description": "Later",
                      "recipientEmail": vendor_email, "scheduledFor": in_days(30)}}),
    )
    .await
    .ok()
    .unwrap();
    let sched_id = scheduled.data()["createPayment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(scheduled.data()["createPayment"]["amount"], "12.50");
    let updated = gql(
        c_tok.clone(),
        "mutation($id: ID!) { updatePayment(id: $id, input: {description: \"Edited\", metadata: null}) { description metadata transactions { statusMessage } } }".into(),
        json!({"id": sched_id}),
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(updated.data()["updatePayment"]["description"], "Edited");
    assert_eq!(
        updated.data()["updatePayment"]["transactions"][1]["statusMessage"],
        "Payment details updated"
    );
    let forbidden_status = gql(
        Some(vendor.access_token.clone()),
        "mutation($id: ID!) { updatePaymentStatus(id: $id, status: cancelled) { status } }".into(),
        json!({"id": sched_id}),
    )
    .await;
    assert_eq!(forbidden_status.code(), "FORBIDDEN");
    let cancelled = gql(
        c_tok.clone(),
        "mutation($id: ID!) { updatePaymentStatus(id: $id, status: cancelled, reason: \"Changed my mind\") { status failureReason } }".into(),
        json!({"id": sched_id}),
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(
        cancelled.data()["updatePaymentStatus"]["status"],
        "cancelled"
    );
    assert_eq!(
        cancelled.data()["updatePaymentStatus"]["failureReason"],
        "Changed my mind"
    );

    // profile, updateProfile, updatePreferences.
    let profile = gql(
        c_tok.clone(),
        "{ profile { id userId phone address bio avatarUrl createdAt updatedAt preferences { theme language currency timezone notifications { email push sms } } } }".into(),
        Value::Null,
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(
        profile.data()["profile"]["userId"],
        customer.user_id.as_str()
    );
    let edited = gql(
        c_tok.clone(),
        "mutation { updateProfile(input: {bio: \"Hello\", phone: \"+1 555 010 0000\"}) { bio phone address } }".into(),
        Value::Null,
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(edited.data()["updateProfile"]["bio"], "Hello");
    let prefs = gql(
        c_tok.clone(),
        "mutation { updatePreferences(input: {theme: dark, language: \"en-us\", notifications: {sms: true}}) { theme language notifications { email sms } } }".into(),
        Value::Null,
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(prefs.data()["updatePreferences"]["theme"], "dark");
    assert_eq!(prefs.data()["updatePreferences"]["language"], "en-US");
    assert_eq!(
        prefs.data()["updatePreferences"]["notifications"]["sms"],
        true
    );
    let bad_profile = gql(
        c_tok.clone(),
        "mutation { updateProfile(input: {phone: \"abc\"}) { phone } }".into(),
        Value::Null,
    )
    .await;
    assert_eq!(bad_profile.code(), "VALIDATION_ERROR");
    assert_eq!(
        bad_profile.body["errors"][0]["extensions"]["details"][0]["field"],
        "phone"
    );

    // ADMIN fields: each refused for the customer with FORBIDDEN, served for the admin.
    let admin_fields = [
        "{ users { pagination { total } } }".to_owned(),
        format!("{{ user(id: \"{}\") {{ id }} }}", vendor.user_id),
        "{ auditLogs { pagination { total } } }".to_owned(),
        "{ systemConfig(key: \"gql.flag\") { key } }".to_owned(),
        "{ systemConfigs { key } }".to_owned(),
        format!(
            "mutation {{ updateUserRole(id: \"{}\", role: VENDOR) {{ id }} }}",
            customer.user_id
        ),
        "mutation { updateSystemConfig(key: \"gql.flag\", value: true) { key } }".to_owned(),
    ];
    for q in &admin_fields {
        let r = gql(c_tok.clone(), q.clone(), Value::Null).await;
        assert_eq!(r.status, 200, "{q}");
        assert_eq!(r.code(), "FORBIDDEN", "{q}: {}", r.body);
        assert_eq!(r.body["errors"][0]["extensions"]["status"], 403, "{q}");
    }
    let no_config = gql(
        a_tok.clone(),
        "{ systemConfig(key: \"gql.flag\") { key } }".into(),
        Value::Null,
    )
    .await;
    assert_eq!(no_config.data()["systemConfig"], Value::Null);
    assert_eq!(no_config.code(), "CONFIG_NOT_FOUND");
    let config = gql(
        a_tok.clone(),
        "mutation { updateSystemConfig(key: \"gql.flag\", value: {on: true, limit: \"10.00\"}, description: \"From GraphQL\") { key value description updatedBy createdAt updatedAt } }".into(),
        Value::Null,
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(
        config.data()["updateSystemConfig"]["value"],
        json!({"on": true, "limit": "10.00"})
    );
    assert_eq!(
        config.data()["updateSystemConfig"]["updatedBy"],
        admin.user_id.as_str()
    );
    let no_value = gql(
        a_tok.clone(),
        "mutation { updateSystemConfig(key: \"gql.flag\") { key } }".into(),
        Value::Null,
    )
    .await;
    assert_eq!(no_value.code(), "VALIDATION_ERROR");
    let reads = gql(
        a_tok.clone(),
        format!(
            "{{ users(search: \"gql-\", sort: email, order: asc, limit: 50) {{ users {{ id email name role isActive emailVerified lastLoginAt createdAt updatedAt }} pagination {{ total }} }}
               user(id: \"{}\") {{ email role }}
               auditLogs(limit: 5, resourceType: \"system_config\") {{ data {{ id userId userName userEmail action resourceType resourceId details ipAddress userAgent timestamp }} pagination {{ total }} }}
               systemConfig(key: \"gql.flag\") {{ description }}
               systemConfigs {{ key value }} }}",
            vendor.user_id
        ),
        Value::Null,
    )
    .await;
    // The directory is filled from events: wait until both new users are listed.
    let reads = if reads.data()["users"]["pagination"]["total"] == 2 {
        reads.ok().unwrap()
    } else {
        api.eventually(Duration::from_secs(10), "users in the admin directory", || {
            let (base, tok) = (base.clone(), admin.access_token.clone());
            let vendor_id = vendor.user_id.clone();
            async move {
                let r = gql_at(
                    &base,
                    Some(&tok),
                    &format!("{{ users(search: \"gql-\") {{ pagination {{ total }} }} user(id: \"{vendor_id}\") {{ email role }} auditLogs(limit: 5, resourceType: \"system_config\") {{ data {{ action }} pagination {{ total }} }} systemConfig(key: \"gql.flag\") {{ description }} systemConfigs {{ key }} }}"),
                    Value::Null,
                )
                .await?;
                Ok((r.data()["users"]["pagination"]["total"] == 2 && r.code().is_empty())
                    .then_some(r))
            }
        })
        .await
        .unwrap()
    };
    assert_eq!(reads.data()["user"]["role"], "VENDOR");
    assert_eq!(reads.data()["systemConfig"]["description"], "From GraphQL");
    assert!(
        reads.data()["systemConfigs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["key"] == "gql.flag")
    );
    assert_eq!(
        reads.data()["auditLogs"]["data"][0]["action"],
        "SYSTEM_CONFIG_CHANGED"
    );
    let role = gql(
        a_tok.clone(),
        format!(
            "mutation {{ updateUserRole(id: \"{}\", role: CUSTOMER) {{ id role }} }}",
            vendor.user_id
        ),
        Value::Null,
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(role.data()["updateUserRole"]["role"], "CUSTOMER");

    // Protocol errors: parse (400), validation (400), batch (400), invalid JSON (400).
    let parse = gql(c_tok.clone(), "{ me { id ".into(), Value::Null).await;
    assert_eq!((parse.status, parse.code()), (400, "GRAPHQL_PARSE_FAILED"));
    let unknown = gql(c_tok.clone(), "{ me { nope } }".into(), Value::Null).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (400, "GRAPHQL_VALIDATION_FAILED")
    );
    let bad_var = gql(
        c_tok.clone(),
        "query($id: ID!) { payment(id: $id) { id } }".into(),
        json!({"id": {"not": "an id"}}),
    )
    .await;
    assert_eq!(
        (bad_var.status, bad_var.code()),
        (400, "GRAPHQL_VALIDATION_FAILED")
    );
    let http = reqwest::Client::new();
    let batch = http
        .post(format!("{base}/graphql"))
        .json(&json!([{"query": "{ me { id } }"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 400);
    let batch: Value = batch.json().await.unwrap();
    assert_eq!(batch["errors"][0]["extensions"]["code"], "VALIDATION_ERROR");
    assert_eq!(
        batch["errors"][0]["extensions"]["details"][0]["field"],
        "body"
    );
    let invalid = http
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let invalid: Value = invalid.json().await.unwrap();
    assert_eq!(invalid["errors"][0]["extensions"]["code"], "INVALID_JSON");
    // Edge rejections are in the GraphQL format too.
    let origin = http
        .post(format!("{base}/graphql"))
        .header("origin", "https://evil.example")
        .json(&json!({"query": "{ me { id } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(origin.status(), 403);
    let origin: Value = origin.json().await.unwrap();
    assert_eq!(
        origin["errors"][0]["extensions"]["code"],
        "ORIGIN_NOT_ALLOWED"
    );
    assert_eq!(origin["errors"][0]["extensions"]["status"], 403);

    // Limits: depth 11 (introspection nests deep), 500 fields after fragment expansion.
    let deep = gql(
        c_tok.clone(),
        "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }".into(),
        Value::Null,
    )
    .await;
    assert_eq!(
        (deep.status, deep.code()),
        (400, "GRAPHQL_VALIDATION_FAILED"),
        "{}",
        deep.body
    );
    let aliases = |n: usize| {
        let sel = (0..n).fold(String::new(), |mut acc, i| {
            let _ = write!(acc, " m{i}: me {{ ...U }}");
            acc
        });
        format!("{{{sel} }} fragment U on User {{ id email name role createdAt updatedAt }}")
    };
    // 71 × (1 + 6) = 497 fields: allowed; 72 × 7 = 504: refused.
    let at_limit = gql(c_tok.clone(), aliases(71), Value::Null)
        .await
        .ok()
        .unwrap();
    assert_eq!(at_limit.data()["m70"]["id"], customer.user_id.as_str());
    let over = gql(c_tok.clone(), aliases(72), Value::Null).await;
    assert_eq!(
        (over.status, over.code()),
        (400, "GRAPHQL_VALIDATION_FAILED")
    );

    // The N+1 bound: 100 payments listed with their parties = 1 payments call; with
    // transactions = 1 + one detail call per payment, whatever else the query selects.
    let seeded: Vec<_> = futures::stream::iter(0..99)
        .map(|i| {
            let api = api.clone();
            let (tok, to) = (customer.access_token.clone(), vendor.user_id.clone());
            async move {
                api.send(
                    Method::POST,
                    "/api/payments",
                    Some(&tok),
                    Some(
                        &json!({"type": "instant", "amount": format!("{}.00", i + 1),
                                 "description": format!("Bulk {i}"), "recipientId": to}),
                    ),
                    &[],
                )
                .await
                .map(|r| r.status.as_u16())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(seeded.iter().all(|s| matches!(s, Ok(201))), "{seeded:?}");
    let before = upstream_calls(&base, "payments").await.unwrap();
    let parties = gql(
        c_tok.clone(),
        "{ payments(limit: 100) { payments { id amount sender { id email name } recipient { id email name } } pagination { total } } }".into(),
        Value::Null,
    )
    .await
    .ok()
    .unwrap();
    let after = upstream_calls(&base, "payments").await.unwrap();
    let list = parties.data()["payments"]["payments"].as_array().unwrap();
    assert_eq!(list.len(), 100);
    assert!(list.iter().all(|p| p["recipient"]["name"] == "Gql Vendor"));
    assert_eq!(
        after - before,
        1,
        "100 payments with parties: one upstream call"
    );
    let with_tx = gql(
        c_tok.clone(),
        "{ payments(limit: 100) { payments { id sender { name } transactions { status } again: transactions { id } } } }".into(),
        Value::Null,
    )
    .await
    .ok()
    .unwrap();
    let after_tx = upstream_calls(&base, "payments").await.unwrap();
    assert!(
        with_tx.data()["payments"]["payments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| !p["transactions"].as_array().unwrap().is_empty())
    );
    assert_eq!(
        after_tx - after,
        101,
        "transactions: the list plus one detail call per distinct payment"
    );

    // GraphiQL (development) and the SDL.
    let page = http.get(format!("{base}/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
    let sdl = http
        .get(format!("{base}/graphql/schema.graphql"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(sdl, payplane_gateway::graphql::sdl());
    let docs: Value = http
        .get(format!("{base}/api-docs/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        docs["info"]["description"]
            .as_str()
            .unwrap()
            .contains("[GraphiQL](/graphql)")
    );

    // The auth bucket: a gateway with a 2-token auth bucket in front of the same services;
    // the third login through GraphQL is refused before reaching auth.
    let mut config = payplane_gateway::Config::for_tests();
    for s in ["auth", "payments", "admin", "profile"] {
        config = config.with_upstream(s, &platform.service_url(s));
    }
    config.rate_limits.enabled = true;
    config.rate_limits.auth.burst = 2;
    config.rate_limits.auth.per_minute = 1;
    let limited = payplane_gateway::testing::TestGateway::spawn(config)
        .await
        .unwrap();
    let login_query = format!(
        "mutation {{ login(input: {{email: \"{customer_email}\", password: \"{}\"}}) {{ accessToken }} }}",
        payplane_e2e::PASSWORD
    );
    for _ in 0..2 {
        gql_at(&limited.base_url, None, &login_query, Value::Null)
            .await
            .unwrap()
            .ok()
            .unwrap();
    }
    // Queries are not counted in the auth bucket.
    gql_at(
        &limited.base_url,
        Some(&customer.access_token),
        "{ me { id } }",
        Value::Null,
    )
    .await
    .unwrap()
    .ok()
    .unwrap();
    let refused = gql_at(&limited.base_url, None, &login_query, Value::Null)
        .await
        .unwrap();
    assert_eq!(refused.status, 429);
    assert_eq!(refused.code(), "RATE_LIMIT_EXCEEDED");
    limited.stop().await;

    // Production: no GraphiQL (404 in the GraphQL format), no introspection.
    let mut config = payplane_gateway::Config::for_tests();
    for s in ["auth", "payments", "admin", "profile"] {
        config = config.with_upstream(s, &platform.service_url(s));
    }
    config.environment = payplane_kit::config::Environment::Production;
    let prod = payplane_gateway::testing::TestGateway::spawn(config)
        .await
        .unwrap();
    let page = http.get(prod.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 404);
    let page: Value = page.json().await.unwrap();
    assert_eq!(page["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let intro = gql_at(
        &prod.base_url,
        Some(&customer.access_token),
        "{ __schema { queryType { name } } }",
        Value::Null,
    )
    .await
    .unwrap();
    assert_eq!(
        (intro.status, intro.code()),
        (400, "GRAPHQL_VALIDATION_FAILED"),
        "{}",
        intro.body
    );
    let served = gql_at(
        &prod.base_url,
        Some(&customer.access_token),
        "{ me { id } }",
        Value::Null,
    )
    .await
    .unwrap()
    .ok()
    .unwrap();
    assert_eq!(served.data()["me"]["id"], customer.user_id.as_str());
    prod.stop().await;

    // logout → true; the session's token is then refused.
    let out = gql(c_tok.clone(), "mutation { logout }".into(), Value::Null)
        .await
        .ok()
        .unwrap();
    assert_eq!(out.data()["logout"], true);
    let after_logout = gql(c_tok.clone(), "{ me { id } }".into(), Value::Null).await;
    assert_eq!(after_logout.code(), "SESSION_REVOKED");
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A `graphql-transport-ws` client.
struct Sub {
    ws: Ws,
}

impl Sub {
    async fn open(base: &str) -> anyhow::Result<Self> {
        let mut req =
            format!("{}/graphql", base.replacen("http", "ws", 1)).into_client_request()?;
        req.headers_mut().insert(
            "sec-websocket-protocol",
            http::HeaderValue::from_static("graphql-transport-ws"),
        );
        let (ws, res) = connect_async(req).await.context("handshake")?;
        assert_eq!(
            res.headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws")
        );
        Ok(Self { ws })
    }

    async fn send(&mut self, msg: Value) -> anyhow::Result<()> {
        self.ws.send(Message::text(msg.to_string())).await?;
        Ok(())
    }

    /// The next JSON message, or the close code as `Err`.
    async fn next(&mut self, limit: Duration) -> anyhow::Result<Result<Value, u16>> {
        loop {
            let m = tokio::time::timeout(limit, self.ws.next())
                .await
                .context("timed out waiting for a message")?;
            match m {
                Some(Ok(Message::Text(t))) => return Ok(Ok(serde_json::from_str(&t)?)),
                Some(Ok(Message::Close(f))) => {
                    return Ok(Err(f.map_or(1005, |f| u16::from(f.code))));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("socket error: {e}"),
                None => return Ok(Err(1006)),
            }
        }
    }

    /// Opens, authenticates and waits for `connection_ack`.
    async fn connect(base: &str, token: &str) -> anyhow::Result<Self> {
        let mut s = Self::open(base).await?;
        s.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}))
            .await?;
        let ack = s.next(Duration::from_secs(5)).await?;
        if ack.as_ref().ok().map(|v| &v["type"]) != Some(&json!("connection_ack")) {
            bail!("no connection_ack: {ack:?}");
        }
        Ok(s)
    }

    /// Starts a subscription, then a ping round trip so the server has taken it.
    async fn subscribe(&mut self, id: &str, query: &str) -> anyhow::Result<()> {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query}}))
            .await?;
        self.send(json!({"type": "ping"})).await?;
        loop {
            match self.next(Duration::from_secs(5)).await? {
                Ok(m) if m["type"] == "pong" => return Ok(()),
                Ok(m) if m["type"] == "next" || m["type"] == "error" => {
                    bail!("subscription answered at once: {m}")
                }
                Ok(_) => {}
                Err(code) => bail!("closed with {code}"),
            }
        }
    }

    /// The next `next` payload of subscription `id`.
    async fn event(&mut self, id: &str) -> anyhow::Result<Value> {
        loop {
            match self.next(EVENT_WAIT).await? {
                Ok(m) if m["type"] == "next" && m["id"] == id => return Ok(m["payload"].clone()),
                Ok(_) => {}
                Err(code) => bail!("closed with {code} while waiting for an event"),
            }
        }
    }

    async fn closed(&mut self) -> anyhow::Result<u16> {
        loop {
            match self.next(Duration::from_secs(10)).await? {
                Ok(_) => {}
                Err(code) => return Ok(code),
            }
        }
    }
}

const EVENT_FIELDS: &str = "eventId eventType paymentId status previousStatus amount currency type senderId recipientId occurredAt";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_payments_live() {
    let (platform, api) = Platform::start_default(Path::new(NODE)).await.unwrap();
    let base = platform.gateway_url.clone();
    let run = &platform.run_id;
    let customer = api
        .register(
            &format!("sub-c-{run}@example.com"),
            "Sub Customer",
            "CUSTOMER",
            "s-c",
        )
        .await
        .unwrap();
    let vendor = api
        .register(
            &format!("sub-v-{run}@example.com"),
            "Sub Vendor",
            "VENDOR",
            "s-v",
        )
        .await
        .unwrap();
    let stranger = api
        .register(
            &format!("sub-x-{run}@example.com"),
            "Sub Stranger",
            "CUSTOMER",
            "s-x",
        )
        .await
        .unwrap();

    // Refusals: no `connection_init` within 10 s → 4408 (watched while the rest runs); no
    // token or a bad token → 4403.
    let silent = {
        let base = base.clone();
        tokio::spawn(async move {
            let mut s = Sub::open(&base).await?;
            s.next(Duration::from_secs(15)).await
        })
    };
    let mut anon = Sub::open(&base).await.unwrap();
    anon.send(json!({"type": "connection_init", "payload": {}}))
        .await
        .unwrap();
    assert_eq!(anon.closed().await.unwrap(), 4403);
    let mut early = Sub::open(&base).await.unwrap();
    early
        .send(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { paymentUpdated { paymentId } }"}}))
        .await
        .unwrap();
    assert_eq!(early.closed().await.unwrap(), 4401);
    let mut bad = Sub::open(&base).await.unwrap();
    bad.send(json!({"type": "connection_init", "payload": {"token": "nope"}}))
        .await
        .unwrap();
    assert_eq!(bad.closed().await.unwrap(), 4403);

    // The customer's own stream and the vendor's (recipient) both follow a REST payment.
    let query = format!("subscription {{ paymentUpdated {{ {EVENT_FIELDS} }} }}");
    let mut mine = Sub::connect(&base, &customer.access_token).await.unwrap();
    mine.subscribe("mine", &query).await.unwrap();
    let mut theirs = Sub::connect(&base, &vendor.access_token).await.unwrap();
    theirs.subscribe("v", &query).await.unwrap();
    let mut outsider = Sub::connect(&base, &stranger.access_token).await.unwrap();
    outsider.subscribe("x", &query).await.unwrap();
    let created = api
        .post(
            "/api/payments",
            Some(&customer.access_token),
            &json!({"type": "instant", "amount": "42.00", "description": "Live",
                    "recipientId": vendor.user_id}),
        )
        .await
        .unwrap()
        .expect_status(201)
        .unwrap();
    let pid = created.data()["id"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    while statuses.len() < 3 {
        let ev = mine.event("mine").await.unwrap();
        let e = &ev["data"]["paymentUpdated"];
        assert_eq!(e["paymentId"], pid.as_str());
        assert_eq!(e["amount"], "42.00");
        assert_eq!(e["senderId"], customer.user_id.as_str());
        assert!(e["occurredAt"].as_str().unwrap().ends_with('Z'));
        statuses.push(e["eventType"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        statuses,
        ["payment:created", "payment:processing", "payment:completed"]
    );
    let mut vendor_statuses = Vec::new();
    while vendor_statuses.len() < 3 {
        let ev = theirs.event("v").await.unwrap();
        vendor_statuses.push(
            ev["data"]["paymentUpdated"]["status"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(vendor_statuses, ["pending", "processing", "completed"]);

    // One payment by id: allowed for a party, refused (PAYMENT_NOT_FOUND) for anyone else.
    let pending = api
        .post(
            "/api/payments",
            Some(&customer.access_token),
            &json!({"type": "scheduled", "amount": "7.00", "description": "Watched",
                    "recipientId": vendor.user_id,
                    "scheduledFor": in_days(30)}),
        )
        .await
        .unwrap()
        .expect_status(201)
        .unwrap();
    let watched = pending.data()["id"].as_str().unwrap().to_owned();
    // Its creation event has reached this gateway's hub before the by-id watch below starts:
    // on a loaded machine the event can otherwise arrive just after, and (rightly) be
    // delivered to the new subscription.
    let ev = mine.event("mine").await.unwrap();
    assert_eq!(ev["data"]["paymentUpdated"]["paymentId"], watched.as_str());
    assert_eq!(ev["data"]["paymentUpdated"]["eventType"], "payment:created");
    let by_id =
        format!("subscription {{ paymentUpdated(paymentId: \"{watched}\") {{ {EVENT_FIELDS} }} }}");
    outsider
        .send(json!({"id": "spy", "type": "subscribe", "payload": {"query": by_id}}))
        .await
        .unwrap();
    let refused = outsider.event("spy").await.unwrap();
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "PAYMENT_NOT_FOUND"
    );
    let mut vendor_watch = Sub::connect(&base, &vendor.access_token).await.unwrap();
    vendor_watch.subscribe("w", &by_id).await.unwrap();
    api.patch(
        &format!("/api/payments/{watched}/status"),
        &customer.access_token,
        &json!({"status": "cancelled"}),
    )
    .await
    .unwrap()
    .expect_status(200)
    .unwrap();
    let ev = vendor_watch.event("w").await.unwrap();
    assert_eq!(
        ev["data"]["paymentUpdated"]["eventType"],
        "payment:cancelled"
    );
    assert_eq!(ev["data"]["paymentUpdated"]["previousStatus"], "pending");
    // The stranger's own stream never saw either payment.
    outsider.send(json!({"type": "ping"})).await.unwrap();
    loop {
        let m = outsider
            .next(Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(m["type"], "next", "a stranger received {m}");
        if m["type"] == "pong" {
            break;
        }
    }

    // A revoked session closes its subscription socket (4403, as /ws closes with 4001).
    api.send(
        Method::POST,
        "/api/auth/logout",
        Some(&customer.access_token),
        Some(&json!({})),
        &[],
    )
    .await
    .unwrap()
    .expect_status(200)
    .unwrap();
    assert_eq!(mine.closed().await.unwrap(), 4403);
    assert_eq!(silent.await.unwrap().unwrap(), Err(4408));
}
