//! Profile service integration tests against the real PostgreSQL and Redis, with the real auth
//! service issuing the tokens (its JWKS is what profile verifies against). Each test has its own
//! databases and Redis key prefix, so they run in parallel.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::collections::HashSet;

use payplane_bus::consumer::{self, Outcome, RawMessage};
use payplane_events::topology::PROFILE_EVENTS;
use payplane_kit::openapi::{check_document, probe};
use payplane_profile::events::UserEvents;
use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Stack, within};
use uuid::Uuid;

fn updated_events(outbox: &[Value]) -> Vec<&Value> {
    outbox
        .iter()
        .filter(|e| e["type"] == "profile.profile.updated")
        .collect()
}

#[tokio::test]
async fn every_endpoint_creates_the_profile_lazily_and_concurrently_safely() {
    let s = Stack::local().await;
    for (method, path) in [
        (Method::GET, "/api/profile"),
        (Method::GET, "/api/profile/preferences"),
        (Method::PUT, "/api/profile"),
        (Method::PUT, "/api/profile/preferences"),
    ] {
        let user = s.register().await;
        assert_eq!(s.profile_id(user.id).await, None, "no broker: nothing yet");
        let body = (method == Method::PUT).then(|| json!({}));
        let res = s
            .client
            .call(method.clone(), path, Some(&user.token), body)
            .await;
        assert_eq!(res.status, StatusCode::OK, "{method} {path}: {}", res.body);
        let id = s.profile_id(user.id).await.expect("created on the request");
        let profile = s.get("/api/profile", &user.token).await;
        assert_eq!(profile.data()["id"], id.to_string());
        assert_eq!(profile.data()["userId"], user.id.to_string());
        for field in ["phone", "address", "bio", "avatarUrl"] {
            assert_eq!(profile.data()[field], Value::Null, "{field}");
        }
        assert_eq!(
            profile.data()["preferences"],
            json!({"theme": "system", "language": "en", "currency": "USD", "timezone": "UTC",
                   "notifications": {"email": true, "push": true, "sms": false}})
        );
        let created = profile.data()["createdAt"].as_str().unwrap();
        assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    }
    assert!(
        updated_events(&s.outbox().await).is_empty(),
        "creation emits no event, nor does an empty PUT"
    );

    // Ten first requests at once: one profile, the same id in every answer.
    let user = s.register().await;
    let answers = futures::future::join_all((0..10).map(|i| {
        let path = if i % 2 == 0 {
            "/api/profile"
        } else {
            "/api/profile/preferences"
        };
        s.client.call(
            if i % 4 == 1 { Method::PUT } else { Method::GET },
            path,
            Some(&user.token),
            (i % 4 == 1).then(|| json!({})),
        )
    }))
    .await;
    assert!(answers.iter().all(|r| r.status == StatusCode::OK));
    let ids: HashSet<String> = answers
        .iter()
        .filter_map(|r| r.data()["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM user_profiles WHERE user_id = $1")
        .bind(user.id)
        .fetch_one(&s.profile.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn profile_fields_phone_aliases_clearing_and_events() {
    let s = Stack::local().await;
    let user = s.register().await;
    let t = &user.token;

    let res = s
        .put(
            "/api/profile",
            t,
            json!({"phoneNumber": " +1 555 010 0000 ", "address": "1 Main St\nSpringfield",
                   "bio": "Hello <b>there</b>", "avatarUrl": "https://cdn.example.com/a.png",
                   "unknown": "ignored"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let p = res.data();
    assert_eq!(
        p["phone"], "+1 555 010 0000",
        "phoneNumber is stored as phone, trimmed"
    );
    assert!(p.get("phoneNumber").is_none());
    assert_eq!(p["address"], "1 Main St\nSpringfield");
    assert_eq!(p["bio"], "Hello <b>there</b>", "HTML is stored verbatim");
    assert_eq!(p["avatarUrl"], "https://cdn.example.com/a.png");
    assert_eq!(s.get("/api/profile", t).await.data(), p);

    // Only present fields change; `phone` works as well; the same value twice is one field.
    let res = s
        .put(
            "/api/profile",
            t,
            json!({"phone": "(555) 010-0001", "phoneNumber": "(555) 010-0001"}),
        )
        .await;
    assert_eq!(res.data()["phone"], "(555) 010-0001");
    assert_eq!(res.data()["bio"], "Hello <b>there</b>");

    // A PUT that changes nothing writes nothing and emits nothing.
    let before = s.outbox().await.len();
    let same = s
        .put(
            "/api/profile",
            t,
            json!({"phone": "(555) 010-0001", "bio": "Hello <b>there</b>"}),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.data()["updatedAt"], res.data()["updatedAt"]);
    assert_eq!(s.outbox().await.len(), before);

    // "" (after trimming) and null clear, for every field; a data URL avatar is accepted.
    let res = s
        .put(
            "/api/profile",
            t,
            json!({"phoneNumber": "  ", "address": null, "bio": "",
                                       "avatarUrl": "data:image/png;base64,iVBORw0KGgo="}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.data()["phone"], Value::Null);
    assert_eq!(res.data()["address"], Value::Null);
    assert_eq!(res.data()["bio"], Value::Null);
    assert_eq!(
        res.data()["avatarUrl"],
        "data:image/png;base64,iVBORw0KGgo="
    );
    let res = s
        .put("/api/profile", t, json!({"phone": null, "avatarUrl": null}))
        .await;
    assert_eq!(res.data()["avatarUrl"], Value::Null);
    let stored = s.profile_row(user.id).await.unwrap();
    assert_eq!(
        ["phone", "address", "bio", "avatar_url"].map(|column| &stored[column]),
        [&Value::Null; 4],
        "cleared fields are NULL, bio included"
    );

    // One event per change, field names only, never values.
    let events = s.outbox().await;
    let events = updated_events(&events);
    let changed: Vec<Value> = events
        .iter()
        .map(|e| e["data"]["changedFields"].clone())
        .collect();
    assert_eq!(
        changed,
        [
            json!(["phone", "address", "bio", "avatarUrl"]),
            json!(["phone"]),
            json!(["phone", "address", "bio", "avatarUrl"]),
            json!(["avatarUrl"]),
        ]
    );
    let first = events[0];
    assert_eq!(first["source"], "profile");
    assert_eq!(first["version"], "1");
    let data = &first["data"];
    assert_eq!(data["userId"], user.id.to_string());
    assert_eq!(data["profileId"], p["id"]);
    assert_eq!(data["changedPreferences"], json!([]));
    assert_eq!(data["actorId"], user.id.to_string());
    assert_eq!(data["actorType"], "user");
    assert_eq!(data["updatedAt"], p["updatedAt"]);
    let text = first.to_string();
    assert!(
        !text.contains("+1 555 010 0000")
            && !text.contains("Main St")
            && !text.contains("cdn.example")
    );
}

#[tokio::test]
async fn preferences_are_merged_key_by_key_and_flag_by_flag() {
    let s = Stack::local().await;
    let user = s.register().await;
    let t = &user.token;
    let prefs = |r: &support::Res| r.data().clone();
    let path = "/api/profile/preferences";

    let r = s
        .put(path, t, json!({"theme": "DARK", "currency": "eur"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        prefs(&r),
        json!({"theme": "dark", "language": "en", "currency": "EUR", "timezone": "UTC",
               "notifications": {"email": true, "push": true, "sms": false}})
    );
    let r = s
        .put(
            path,
            t,
            json!({"language": "pt-br", "timezone": "America/New_York"}),
        )
        .await;
    assert_eq!(r.data()["language"], "pt-BR");
    assert_eq!(r.data()["timezone"], "America/New_York");
    assert_eq!(r.data()["theme"], "dark", "other keys are kept");
    // Each change applies to the flags the one before left.
    for (change, flags) in [
        (
            json!({"sms": true}),
            json!({"email": true, "push": true, "sms": true}),
        ),
        (
            json!({"email": false, "push": false}),
            json!({"email": false, "push": false, "sms": true}),
        ),
        (
            json!({"email": null}),
            json!({"email": true, "push": false, "sms": true}),
        ),
    ] {
        let r = s.put(path, t, json!({ "notifications": change })).await;
        assert_eq!(r.data()["notifications"], flags);
    }
    let r = s
        .put(path, t, json!({"theme": null, "favouriteColour": "teal"}))
        .await;
    assert_eq!(r.data()["theme"], "system", "null resets to the default");
    assert!(r.data().get("favouriteColour").is_none());
    assert_eq!(
        s.profile_row(user.id).await.unwrap()["preferences"],
        json!({"language": "pt-BR", "currency": "EUR", "timezone": "America/New_York",
               "notifications": {"push": false, "sms": true}}),
        "only keys the user set are stored; unknown keys never"
    );
    let r = s.put(path, t, json!({"notifications": null})).await;
    assert_eq!(
        r.data()["notifications"],
        json!({"email": true, "push": true, "sms": false})
    );
    assert_eq!(s.get(path, t).await.data(), r.data());
    assert_eq!(
        s.get("/api/profile", t).await.data()["preferences"],
        *r.data()
    );

    // Unchanged values emit nothing; each change lists exactly the changed keys.
    let before = s.outbox().await.len();
    let r = s
        .put(path, t, json!({"currency": "EUR", "theme": null}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(s.outbox().await.len(), before);
    let events = s.outbox().await;
    let changed: Vec<(Value, Value)> = updated_events(&events)
        .iter()
        .map(|e| {
            (
                e["data"]["changedFields"].clone(),
                e["data"]["changedPreferences"].clone(),
            )
        })
        .collect();
    let p = json!(["preferences"]);
    assert_eq!(
        changed,
        [
            (p.clone(), json!(["theme", "currency"])),
            (p.clone(), json!(["language", "timezone"])),
            (p.clone(), json!(["notifications"])),
            (p.clone(), json!(["notifications"])),
            (p.clone(), json!(["notifications"])),
            (p.clone(), json!(["theme"])),
            (p, json!(["notifications"])),
        ]
    );
}

#[tokio::test]
async fn reads_come_from_the_cache_and_a_read_after_a_write_is_never_stale() {
    let s = Stack::local().await;
    let user = s.register().await;
    let t = &user.token;
    let cache = &s.profile.state.cache;
    let mut redis = s.profile.state.authn.redis.clone();

    let first = s.get("/api/profile", t).await;
    let v0 = cache.version(user.id).await.unwrap();
    let cached: Option<String> = redis.get(cache.value_key(user.id, v0)).await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&cached.unwrap()).unwrap(),
        *first.data()
    );
    let ttl: i64 = redis.ttl(cache.value_key(user.id, v0)).await.unwrap();
    assert!((290..=300).contains(&ttl), "{ttl}");

    // Proof that reads are served from the cache: a change made behind the service's back is
    // not seen until a write through the service bumps the version.
    sqlx::query("UPDATE user_profiles SET bio = 'behind the back' WHERE user_id = $1")
        .bind(user.id)
        .execute(&s.profile.db.pool)
        .await
        .unwrap();
    assert_eq!(
        s.get("/api/profile", t).await.data()["bio"],
        Value::Null,
        "cache hit"
    );

    // After each kind of write, the very next read (either endpoint) sees it.
    let w = s
        .put("/api/profile", t, json!({"phone": "+44 20 7946 0000"}))
        .await;
    assert_eq!(w.status, StatusCode::OK);
    assert!(
        cache.version(user.id).await.unwrap() > v0,
        "version bumped after commit"
    );
    let r = s.get("/api/profile", t).await;
    assert_eq!(r.data()["phone"], "+44 20 7946 0000");
    assert_eq!(
        r.data()["bio"],
        "behind the back",
        "fresh read from the database"
    );
    assert_eq!(r.data(), w.data());
    for (i, theme) in ["dark", "light", "system", "dark"].into_iter().enumerate() {
        // Warm the cache with both endpoints, then write, then read back.
        s.get("/api/profile", t).await;
        s.get("/api/profile/preferences", t).await;
        let w = s
            .put("/api/profile/preferences", t, json!({"theme": theme}))
            .await;
        assert_eq!(w.data()["theme"], theme, "{i}");
        assert_eq!(
            s.get("/api/profile/preferences", t).await.data()["theme"],
            theme,
            "{i}"
        );
        assert_eq!(
            s.get("/api/profile", t).await.data()["preferences"]["theme"],
            theme,
            "{i}"
        );
        let w = s
            .put("/api/profile", t, json!({"bio": format!("bio {i}")}))
            .await;
        assert_eq!(w.status, StatusCode::OK);
        assert_eq!(
            s.get("/api/profile", t).await.data()["bio"],
            format!("bio {i}")
        );
    }

    // Concurrent writers and readers: the last read after all writes sees the final state.
    let writes = futures::future::join_all(
        (0..8).map(|i| s.put("/api/profile", t, json!({"address": format!("Street {i}")}))),
    );
    let reads = futures::future::join_all((0..8).map(|_| s.get("/api/profile", t)));
    let (writes, _) = tokio::join!(writes, reads);
    assert!(writes.iter().all(|w| w.status == StatusCode::OK));
    let stored: String = sqlx::query_scalar("SELECT address FROM user_profiles WHERE user_id = $1")
        .bind(user.id)
        .fetch_one(&s.profile.db.pool)
        .await
        .unwrap();
    assert_eq!(s.get("/api/profile", t).await.data()["address"], stored);
}

/// Asserts a 400 `VALIDATION_ERROR` naming exactly `fields`.
async fn rejects(s: &Stack, t: &str, path: &str, body: Value, fields: &[&str]) {
    let r = s.put(path, t, body.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    assert_eq!(r.code(), "VALIDATION_ERROR", "{body}");
    assert_eq!(r.fields(), fields, "{body}: {}", r.body);
    assert!(r.body["error"]["requestId"].is_string());
}

#[tokio::test]
async fn every_validation_rule_has_a_failing_input() {
    let s = Stack::local().await;
    let user = s.register().await;
    let t = &user.token;
    let path = "/api/profile";

    // phone / phoneNumber: 10..20 characters of ^\+?[0-9\s().\-/]+$, strings only.
    for bad in [
        "123456789",
        "+1234567890123456789012",
        "12345abcde",
        "++1234567890",
        "1234567890#",
        "１２３４５６７８９０",
    ] {
        rejects(&s, t, path, json!({"phone": bad}), &["phone"]).await;
        rejects(&s, t, path, json!({"phoneNumber": bad}), &["phoneNumber"]).await;
    }
    for (body, fields) in [
        (json!({"phone": 1_234_567_890}), &["phone"]),
        (json!({"phone": "1234567890\u{0}"}), &["phone"]),
        (
            json!({"phone": "1234567890", "phoneNumber": "0987654321"}),
            &["phone"],
        ),
        (
            json!({"phone": "", "phoneNumber": "0987654321"}),
            &["phone"],
        ),
        // address: 1..500, multi-line allowed, other control characters not.
        (json!({"address": "a".repeat(501)}), &["address"]),
        (json!({"address": "a\u{7}b"}), &["address"]),
        (json!({"address": ["1 Main St"]}), &["address"]),
        // bio: 0..1000 (length after trimming and NFC).
        (json!({"bio": "é".repeat(1001)}), &["bio"]),
        (json!({"bio": "nul\u{0}"}), &["bio"]),
        (json!({"bio": true}), &["bio"]),
    ] {
        rejects(&s, t, path, body, fields).await;
    }
    // avatarUrl: absolute http(s) ≤ 2048, or data:image/(png|jpeg|gif|webp);base64 of at most
    // 2 796 220 characters (a 2 MiB image in base64, api.md §7 changelog review 2).
    for bad in [
        "ftp://example.com/a.png",
        "/avatars/a.png",
        "example.com/a.png",
        "https://",
        "javascript:alert(1)",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "data:image/png;base64,***",
        "data:image/png;base64,",
        "data:image/png,iVBORw0KGgo=",
        "data:text/html;base64,PGI+",
    ] {
        rejects(&s, t, path, json!({"avatarUrl": bad}), &["avatarUrl"]).await;
    }
    let long_url = format!("https://example.com/{}", "a".repeat(2029));
    assert_eq!(long_url.len(), 2049);
    rejects(&s, t, path, json!({"avatarUrl": long_url}), &["avatarUrl"]).await;
    let ok_url = &long_url[..2048];
    assert_eq!(
        s.put(path, t, json!({"avatarUrl": ok_url})).await.status,
        StatusCode::OK
    );
    let prefix = "data:image/png;base64,";
    // Valid base64 (a multiple of 4), only too long.
    let big = format!("{prefix}{}", "A".repeat(2_796_200));
    assert_eq!(big.len(), 2_796_222);
    rejects(&s, t, path, json!({"avatarUrl": big}), &["avatarUrl"]).await;
    // The longest valid base64 that fits.
    let max = format!("{prefix}{}", "A".repeat(2_796_196));
    assert_eq!(max.len(), 2_796_218);
    let res = s.put(path, t, json!({"avatarUrl": max})).await;
    assert_eq!(
        res.status,
        StatusCode::OK,
        "a 2 MiB image as a data URL (2 796 218 characters) fits the 3 MiB body limit"
    );
    rejects(&s, t, path, json!({"avatarUrl": 7}), &["avatarUrl"]).await;
    // All violations of one request together, in body order of the rules.
    rejects(
        &s,
        t,
        path,
        json!({"phone": "1", "address": "x".repeat(600), "bio": 5, "avatarUrl": "nope"}),
        &["phone", "address", "bio", "avatarUrl"],
    )
    .await;
    // Nothing was changed by any rejected request.
    let now = s.get(path, t).await;
    assert_eq!(now.data()["phone"], Value::Null);
    assert_eq!(now.data()["address"], Value::Null);

    let prefs = "/api/profile/preferences";
    for (body, field) in [
        (json!({"theme": "neon"}), "theme"),
        (json!({"theme": 1}), "theme"),
        (json!({"language": "eng"}), "language"),
        (json!({"language": "en_US"}), "language"),
        (json!({"language": "en-USA"}), "language"),
        (json!({"language": "e1"}), "language"),
        (json!({"currency": "XXX"}), "currency"),
        (json!({"currency": "US"}), "currency"),
        (json!({"currency": 840}), "currency"),
        (json!({"timezone": "Mars/Olympus_Mons"}), "timezone"),
        (
            json!({"timezone": format!("Europe/{}", "A".repeat(60))}),
            "timezone",
        ),
        (json!({"timezone": ""}), "timezone"),
        (json!({"notifications": true}), "notifications"),
        (json!({"notifications": ["email"]}), "notifications"),
        (
            json!({"notifications": {"email": "yes"}}),
            "notifications.email",
        ),
        (json!({"notifications": {"push": 1}}), "notifications.push"),
        (
            json!({"notifications": {"sms": "false"}}),
            "notifications.sms",
        ),
    ] {
        rejects(&s, t, prefs, body, &[field]).await;
    }
    rejects(
        &s,
        t,
        prefs,
        json!({"theme": "x", "language": "x", "currency": "x", "timezone": "x",
               "notifications": {"email": 0, "sms": 0}}),
        &[
            "theme",
            "language",
            "currency",
            "timezone",
            "notifications.email",
            "notifications.sms",
        ],
    )
    .await;
    assert_eq!(
        s.get(prefs, t).await.data()["theme"],
        "system",
        "rejected requests change nothing"
    );
    assert!(
        updated_events(&s.outbox().await).len() == 2,
        "only the two accepted avatar edits"
    );
}

#[tokio::test]
async fn bad_bodies_credentials_and_routes_are_clear_4xx() {
    let s = Stack::local().await;
    let user = s.register().await;
    let t = user.token.as_str();
    let url = s.profile.url("/api/profile");
    let raw = |body: &'static str, ct: Option<&'static str>| {
        let mut req = s.http.put(&url).bearer_auth(t).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req
    };
    let r = s.send(raw("{\"phone\":", Some("application/json"))).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "INVALID_JSON")
    );
    let r = s.send(raw("[1,2]", Some("application/json"))).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "VALIDATION_ERROR")
    );
    assert_eq!(r.fields(), ["body"]);
    let r = s
        .send(raw("null", Some("application/json; charset=utf-8")))
        .await;
    assert_eq!(r.fields(), ["body"]);
    let r = s.send(raw("{\"bio\":\"x\"}", Some("text/plain"))).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
    );
    let r = s.send(raw("", None)).await;
    assert_eq!(r.status, StatusCode::OK, "an empty body is {{}}");
    let huge = format!("{{\"bio\":\"{}\"}}", "a".repeat(3 * 1024 * 1024));
    let r = s
        .send(
            s.http
                .put(&url)
                .bearer_auth(t)
                .header("content-type", "application/json")
                .body(huge),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
    );

    for path in ["/api/profile", "/api/profile/preferences"] {
        let r = s.client.call(Method::GET, path, None, None).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
        );
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        let r = s
            .client
            .call(Method::PUT, path, Some("not-a-jwt"), Some(json!({})))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "TOKEN_INVALID")
        );
        let r = s
            .send(
                s.http
                    .get(s.profile.url(path))
                    .header("authorization", format!("Basic {t}")),
            )
            .await;
        assert_eq!(r.code(), "UNAUTHORIZED");
        let r = s
            .client
            .call(Method::POST, path, Some(t), Some(json!({})))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
        );
        assert!(r.headers.contains_key("allow"));
        let r = s
            .client
            .call(Method::GET, &format!("{path}/"), Some(t), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "trailing slash ignored");
        assert_eq!(r.headers["cache-control"], "no-store");
    }
    // The body is read after authentication: a bad body without a token is still a 401.
    let r = s
        .send(
            s.http
                .put(&url)
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    assert_eq!(r.code(), "UNAUTHORIZED");
    let r = s
        .client
        .call(Method::GET, "/api/profile/nope", Some(t), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    // A logged-out session's token is refused.
    let logout = s
        .send(
            s.http
                .post(s.auth.url("/api/auth/logout"))
                .bearer_auth(t)
                .json(&json!({})),
        )
        .await;
    assert!(logout.status.is_success(), "{}", logout.body);
    let r = s.get("/api/profile", t).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
    );
}

fn envelope(routing_key: &str, id: Uuid, data: &Value) -> Vec<u8> {
    json!({"id": id, "type": routing_key, "version": "1", "timestamp": "2026-03-01T10:00:00.000Z",
           "source": "auth", "correlationId": "c-1", "data": data})
    .to_string()
    .into_bytes()
}

fn created(user: Uuid) -> Value {
    json!({"userId": user, "email": "a@example.com", "name": "A", "role": "CUSTOMER",
           "isActive": true, "emailVerified": false, "tokenVersion": 0,
           "createdAt": "2026-03-01T10:00:00.000Z", "updatedAt": "2026-03-01T10:00:00.000Z",
           "origin": "self_service", "actorId": user, "actorType": "user"})
}

fn deleted(user: Uuid) -> Value {
    json!({"userId": user, "email": "a@example.com", "name": "A", "role": "CUSTOMER",
           "origin": "admin", "actorId": Uuid::new_v4(), "actorType": "admin",
           "deletedAt": "2026-03-01T10:00:05.000Z"})
}

#[tokio::test]
async fn consumer_creates_once_deletes_and_never_resurrects() {
    let s = Stack::local().await;
    let pool = &s.profile.db.pool;
    let handler = UserEvents {
        cache: s.profile.state.cache.clone(),
    };
    let step = |key: &'static str, id: Uuid, data: Value| {
        let body = envelope(key, id, &data);
        let handler = &handler;
        async move {
            consumer::handle_one(
                pool,
                &PROFILE_EVENTS.name,
                handler,
                RawMessage {
                    body: &body,
                    headers: None,
                },
            )
            .await
        }
    };
    // A real user, so the profile endpoints can be called with a token for the same id.
    let user = s.register().await;
    let created_id = Uuid::new_v4();
    assert_eq!(
        step("auth.user.created", created_id, created(user.id)).await,
        Outcome::Processed
    );
    let id = s.profile_id(user.id).await.expect("created from the event");
    assert_eq!(
        step("auth.user.created", created_id, created(user.id)).await,
        Outcome::Duplicate
    );
    assert_eq!(
        step("auth.user.created", Uuid::new_v4(), created(user.id)).await,
        Outcome::Processed
    );
    assert_eq!(
        s.profile_id(user.id).await,
        Some(id),
        "a second creation keeps the profile"
    );
    let r = s
        .put("/api/profile", &user.token, json!({"bio": "kept"}))
        .await;
    assert_eq!(r.data()["id"], id.to_string());
    assert_eq!(
        step("auth.user.updated", Uuid::new_v4(), json!({"anything": 1})).await,
        Outcome::Processed
    );
    assert_eq!(
        s.get("/api/profile", &user.token).await.data()["bio"],
        "kept"
    );
    assert_eq!(
        step("auth.user.login", Uuid::new_v4(), json!({})).await,
        Outcome::Ignored
    );
    assert!(matches!(
        step(
            "auth.user.created",
            Uuid::new_v4(),
            json!({"userId": "nope"})
        )
        .await,
        Outcome::DeadLetter { .. }
    ));

    // Deletion removes the profile and is final: a late creation, a retry and the user's own
    // still-valid token (the event did not come from auth here) all leave it deleted.
    assert_eq!(
        step("auth.user.deleted", Uuid::new_v4(), deleted(user.id)).await,
        Outcome::Processed
    );
    assert_eq!(s.profile_id(user.id).await, None);
    assert_eq!(
        step("auth.user.deleted", Uuid::new_v4(), deleted(user.id)).await,
        Outcome::Processed
    );
    assert_eq!(
        step("auth.user.created", Uuid::new_v4(), created(user.id)).await,
        Outcome::Processed
    );
    assert_eq!(s.profile_id(user.id).await, None, "no resurrection");
    // The cache no longer serves the deleted profile (the bump runs after commit).
    within(
        "deleted profile not served",
        std::time::Duration::from_secs(2),
        || async { s.get("/api/profile", &user.token).await.code() == "USER_NOT_FOUND" },
    )
    .await;
    for (method, path) in [
        (Method::PUT, "/api/profile"),
        (Method::PUT, "/api/profile/preferences"),
        (Method::GET, "/api/profile/preferences"),
    ] {
        let r = s
            .client
            .call(method, path, Some(&user.token), Some(json!({})))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "USER_NOT_FOUND"),
            "{path}"
        );
    }
    assert_eq!(s.profile_id(user.id).await, None);
    let processed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM processed_events WHERE consumer = 'profile.events'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    // created ×2, updated, deleted ×2, late created; not the duplicate, the ignored login or
    // the dead-lettered one.
    assert_eq!(processed, 6, "every applied event is recorded once");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = Stack::local().await;
    let user = s.register().await;
    s.get("/api/profile", &user.token).await;
    s.get("/api/profile", &user.token).await;
    let r = s.send(s.http.get(s.profile.url("/health"))).await;
    assert_eq!(r.data()["service"], "profile");
    assert_eq!(r.data()["status"], "healthy");
    let r = s.send(s.http.get(s.profile.url("/health/ready"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["checks"], json!({"database": "up", "cache": "up"}));
    let r = s.send(s.http.get(s.profile.url("/health/live"))).await;
    assert_eq!(r.data()["alive"], true);
    let text = s
        .client
        .call(Method::GET, "/metrics", None, None)
        .await
        .text;
    assert!(
        text.contains("cache_requests_total{cache=\"profile\",result=\"hit\"}"),
        "{text}"
    );
    assert!(text.contains("cache_requests_total{cache=\"profile\",result=\"miss\"}"));
}

#[tokio::test]
async fn openapi_document_describes_exactly_the_served_routes() {
    let s = Stack::local().await;
    let user = s.register().await;
    let res = s.send(s.http.get(s.profile.url("/openapi.json"))).await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc.get("success").is_none(), "not enveloped");
    assert_eq!(
        doc,
        serde_json::to_value(payplane_profile::openapi()).unwrap()
    );
    assert!(doc["components"]["securitySchemes"]["bearerAuth"].is_object());

    let table = payplane_profile::routes::table();
    let (ops, problems) = check_document(&doc, &table.public_paths());
    assert!(problems.is_empty(), "{problems:#?}");
    // Over HTTP: a documented operation is served, an undocumented method on the same path is 405.
    let problems = probe(&ops, |method, path| {
        let (s, token) = (&s, &user.token);
        async move {
            let r = s
                .client
                .call(method, &path, Some(token), Some(json!({})))
                .await;
            let code = r.body["error"]["code"].as_str().unwrap_or("").to_owned();
            (r.status, code)
        }
    })
    .await;
    assert!(problems.is_empty(), "{problems:#?}");
    for path in [
        "/api/profile/avatar",
        "/api/profile/preferences/notifications",
        "/api/profiles",
    ] {
        let r = s
            .client
            .call(Method::GET, path, Some(&user.token), None)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn seed_writes_the_demo_profiles_once_and_clears_deletion_marks() {
    let s = Stack::local().await;
    let pool = &s.profile.db.pool;
    let cache = &s.profile.state.cache;
    let (admin, customer, vendor, other) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    // A demo user deleted earlier must get its profile back when seeding re-creates it.
    sqlx::query("INSERT INTO deleted_users (user_id) VALUES ($1)")
        .bind(vendor)
        .execute(pool)
        .await
        .unwrap();
    let users = [
        (admin, "admin@example.com"),
        (customer, "Customer@Example.com"),
        (vendor, "vendor@example.com"),
        (other, "someone@example.com"),
    ];
    let v0 = cache.version(admin).await.unwrap();
    let n = payplane_profile::ops::seed_profiles(pool, Some(cache), &users)
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert!(
        cache.version(admin).await.unwrap() > v0,
        "seeded profiles are not served stale"
    );
    let row = |id: Uuid| async move {
        sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>, Value)>(
            "SELECT phone, address, bio, preferences FROM user_profiles WHERE user_id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
        .unwrap()
    };
    assert_eq!(
        row(admin).await.unwrap(),
        (
            Some("+1234567890".into()),
            Some("123 Admin Street".into()),
            Some("System Administrator".into()),
            json!({"theme": "dark"})
        )
    );
    assert_eq!(
        row(customer).await.unwrap(),
        (
            Some("+1234567891".into()),
            None,
            None,
            json!({"theme": "light"})
        )
    );
    let v = row(vendor).await.unwrap();
    assert_eq!(v.1.as_deref(), Some("456 Vendor Avenue"));
    assert_eq!(
        preferences_effective(&v.3),
        json!({"theme": "light", "language": "en", "currency": "USD", "timezone": "UTC",
               "notifications": {"email": false, "push": false, "sms": false}})
    );
    assert!(row(other).await.is_none(), "only the demo accounts");
    // Idempotent: a second run writes nothing; a changed demo profile is reset.
    let updated_at = || {
        sqlx::query_scalar::<_, Value>(
            "SELECT to_jsonb(updated_at) FROM user_profiles WHERE user_id = $1",
        )
        .bind(admin)
        .fetch_one(pool)
    };
    let seed = || payplane_profile::ops::seed_profiles(pool, None, &users);
    let updated = updated_at().await.unwrap();
    assert_eq!(seed().await.unwrap(), 0);
    assert_eq!(updated, updated_at().await.unwrap());
    sqlx::query("UPDATE user_profiles SET bio = 'changed', preferences = '{}' WHERE user_id = $1")
        .bind(customer)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(seed().await.unwrap(), 1);
    assert_eq!(row(customer).await.unwrap().2, None);
}

fn preferences_effective(stored: &Value) -> Value {
    payplane_profile::domain::preferences::effective(stored)
}
