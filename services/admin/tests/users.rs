//! User management end to end with the real auth service in the same process (api.md §6.2–§6.9):
//! registration reaches the directory through the broker, and role, status and deletion changes
//! made through admin take effect in auth (tokens, logins) and in the audit log.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use payplane_kit::openapi::{check_document, probe};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{PW, World, eventually, new_email, refresh_token, token};
use uuid::Uuid;

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn actions(entries: &[Value]) -> Vec<String> {
    support::strings(entries, "action")
}

#[tokio::test]
async fn registration_reaches_the_directory_within_two_seconds() {
    let w = World::new().await;
    let email = new_email();
    let started = Instant::now();
    let reg = w.register(&email).await;
    let id = reg.data()["user"]["id"].as_str().unwrap().to_owned();
    let listed = eventually(
        "the new user in the list",
        Duration::from_secs(2),
        || async {
            let r = w.get(&format!("/api/admin/users?search={email}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.data()["users"].as_array().unwrap().first().cloned()
        },
    )
    .await;
    println!("registration → directory: {:?}", started.elapsed());
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(listed["email"], email.as_str());
    assert_eq!(listed["role"], "CUSTOMER");
    assert_eq!(listed["isActive"], true);
    assert_eq!(listed["emailVerified"], false);
    assert_eq!(listed["lastLoginAt"], Value::Null);

    // Detail, then the login event sets lastLoginAt.
    let one = w.get(&format!("/api/admin/users/{id}")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.data()["name"], "Test User");
    let login = w.login(&email).await;
    assert_eq!(login.status, StatusCode::OK);
    eventually("lastLoginAt", Duration::from_secs(5), || async {
        let r = w.get(&format!("/api/admin/users/{id}")).await;
        r.data()["lastLoginAt"].as_str().map(str::to_owned)
    })
    .await;

    // Audit: USER_REGISTERED by the user, USER_LOGIN with the client, and the bootstrap
    // admin's USER_CREATED (origin system) without an actor.
    let entries = w.audit(&format!("resourceId={id}")).await;
    let acts = actions(&entries);
    assert!(acts.contains(&"USER_REGISTERED".to_owned()), "{acts:?}");
    assert!(acts.contains(&"USER_LOGIN".to_owned()), "{acts:?}");
    let registered = entries
        .iter()
        .find(|e| e["action"] == "USER_REGISTERED")
        .unwrap();
    assert_eq!(registered["userId"], id.as_str());
    assert_eq!(registered["userEmail"], email.as_str());
    assert_eq!(registered["resourceType"], "user");
    assert_eq!(registered["details"]["role"], "CUSTOMER");
    let login_entry = entries
        .iter()
        .find(|e| e["action"] == "USER_LOGIN")
        .unwrap();
    assert_eq!(login_entry["details"]["deviceId"], "dev-1");
    assert_eq!(login_entry["ipAddress"], "127.0.0.1");
    let boot = w.audit(&format!("resourceId={}", w.root_id)).await;
    let created = boot.iter().find(|e| e["action"] == "USER_CREATED").unwrap();
    assert_eq!(created["userId"], "");
    assert_eq!(created["details"]["source"], "system");

    // Deleted or unknown users are not found; non-UUID ids too.
    for path in [
        format!("/api/admin/users/{}", Uuid::new_v4()),
        "/api/admin/users/not-a-uuid".to_owned(),
    ] {
        let r = w.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.code(), "USER_NOT_FOUND");
    }
}

#[tokio::test]
async fn role_change_reaches_the_next_refreshed_token() {
    let w = World::new().await;
    let email = new_email();
    let reg = w.register(&email).await;
    let id = reg.data()["user"]["id"].as_str().unwrap().to_owned();
    let (access, refresh) = (token(&reg), refresh_token(&reg));
    assert_eq!(claims(&access)["role"], "CUSTOMER");
    w.wait_listed(id.parse().unwrap()).await;

    let r = w
        .admin(
            Method::PUT,
            &format!("/api/admin/users/{id}/role"),
            Some(json!({"role": "vendor"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["role"], "VENDOR");
    // Read-your-writes: the directory already shows it.
    let one = w.get(&format!("/api/admin/users/{id}")).await;
    assert_eq!(one.data()["role"], "VENDOR");

    // The old token is superseded; the refreshed one carries the new role.
    let me = w.me(&access).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.code(), "TOKEN_EXPIRED");
    let refreshed = w
        .auth_post("/api/auth/refresh", None, json!({"refreshToken": refresh}))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let new_access = token(&refreshed);
    assert_eq!(claims(&new_access)["role"], "VENDOR");
    assert_eq!(w.me(&new_access).await.status, StatusCode::OK);

    // PATCH is the same operation; the same role again is a 200 no-op without audit.
    let r = w
        .admin(
            Method::PATCH,
            &format!("/api/admin/users/{id}/role"),
            Some(json!({"role": "CUSTOMER"})),
        )
        .await;
    assert_eq!(r.data()["role"], "CUSTOMER");
    w.admin_ok(
        Method::PATCH,
        &format!("/api/admin/users/{id}/role"),
        Some(json!({"role": "CUSTOMER"})),
    )
    .await;
    let changes = w
        .audit(&format!("action=USER_ROLE_CHANGED&resourceId={id}"))
        .await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0]["details"]["previousRole"], "VENDOR");
    assert_eq!(changes[0]["details"]["newRole"], "CUSTOMER");
    assert_eq!(changes[1]["details"]["newRole"], "VENDOR");
    assert_eq!(changes[1]["userId"], w.root_id.to_string().as_str());
    assert_eq!(changes[1]["userName"], "Root Admin");

    // The matching auth.user.updated events (origin admin) add no second entry.
    w.wait_processed("auth.user.updated", 2).await;
    let changes = w
        .audit(&format!("action=USER_ROLE_CHANGED&resourceId={id}"))
        .await;
    assert_eq!(changes.len(), 2);

    // Validation, lookup and self-modification.
    let path = format!("/api/admin/users/{id}/role");
    for (body, field) in [
        (json!({}), "role"),
        (json!({"role": "SUPER"}), "role"),
        (json!({"role": 1}), "role"),
    ] {
        let r = w.admin(Method::PUT, &path, Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.fields_sorted(), [field]);
    }
    w.admin_refused(
        Method::PUT,
        &format!("/api/admin/users/{}/role", Uuid::new_v4()),
        Some(json!({"role": "VENDOR"})),
        (StatusCode::NOT_FOUND, "USER_NOT_FOUND"),
    )
    .await;
    w.admin_refused(
        Method::PUT,
        "/api/admin/users/xyz/role",
        Some(json!({"role": "VENDOR"})),
        (StatusCode::NOT_FOUND, "USER_NOT_FOUND"),
    )
    .await;
    w.admin_refused(
        Method::PUT,
        &format!("/api/admin/users/{}/role", w.root_id),
        Some(json!({"role": "CUSTOMER"})),
        (StatusCode::CONFLICT, "SELF_MODIFICATION_FORBIDDEN"),
    )
    .await;
}

#[tokio::test]
async fn deactivation_blocks_logins_and_revokes_sessions() {
    let w = World::new().await;
    let email = new_email();
    let reg = w.register(&email).await;
    let id = reg.data()["user"]["id"].as_str().unwrap().to_owned();
    let access = token(&reg);
    w.wait_listed(id.parse().unwrap()).await;
    let path = format!("/api/admin/users/{id}/status");

    // Validation first.
    for (body, fields) in [
        (json!({}), vec!["isActive"]),
        (json!({"isActive": "false"}), vec!["isActive"]),
        (
            json!({"isActive": false, "reason": "x".repeat(501)}),
            vec!["reason"],
        ),
        (
            json!({"isActive": false, "reason": "a\u{1}b"}),
            vec!["reason"],
        ),
        (
            json!({"isActive": 0, "reason": 5}),
            vec!["isActive", "reason"],
        ),
    ] {
        let r = w.admin(Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.fields_sorted(), fields, "{body}");
    }

    let r = w
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"isActive": false, "reason": "fraud review"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["isActive"], false);
    let login = w.login(&email).await;
    assert_eq!(
        (login.status, login.code()),
        (StatusCode::FORBIDDEN, "ACCOUNT_DISABLED")
    );
    let me = w.me(&access).await;
    assert_eq!(
        (me.status, me.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
    );

    // Same state again: 200, nothing new. An empty or blank reason is absent (api.md §6.8:
    // existing clients always send the reason box).
    w.admin_ok(
        Method::PATCH,
        &path,
        Some(json!({"isActive": false, "reason": " "})),
    )
    .await;
    let entries = w
        .audit(&format!("action=USER_STATUS_CHANGED&resourceId={id}"))
        .await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0]["details"],
        json!({"isActive": false, "previousIsActive": true, "reason": "fraud review"})
    );
    // The ended session arrives as an event and is audited with its reason.
    let revoked = eventually("SESSION_REVOKED entry", Duration::from_secs(5), || async {
        let e = w.audit("action=SESSION_REVOKED&resourceType=session").await;
        e.into_iter()
            .find(|e| e["details"]["userId"] == id.as_str())
    })
    .await;
    assert_eq!(revoked["details"]["reason"], "user_deactivated");
    assert_eq!(revoked["userId"], w.root_id.to_string().as_str());

    // Activation allows logins again.
    let r = w
        .admin(Method::PATCH, &path, Some(json!({"isActive": true})))
        .await;
    assert_eq!(r.data()["isActive"], true);
    assert_eq!(w.login(&email).await.status, StatusCode::OK);

    // Self.
    w.admin_refused(
        Method::PATCH,
        &format!("/api/admin/users/{}/status", w.root_id),
        Some(json!({"isActive": false})),
        (StatusCode::CONFLICT, "SELF_MODIFICATION_FORBIDDEN"),
    )
    .await;
}

#[tokio::test]
async fn deleted_users_cannot_log_in_and_leave_the_directory() {
    let w = World::new().await;
    let email = new_email();
    let reg = w.register(&email).await;
    let id: Uuid = reg.data()["user"]["id"].as_str().unwrap().parse().unwrap();
    w.wait_listed(id).await;
    let r = w
        .admin(Method::DELETE, &format!("/api/admin/users/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let login = w.login(&email).await;
    assert_eq!(
        (login.status, login.code()),
        (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
    );
    assert_eq!(
        w.get(&format!("/api/admin/users/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let list = w.get(&format!("/api/admin/users?search={email}")).await;
    assert_eq!(list.data()["pagination"]["total"], 0);
    let entries = w
        .audit(&format!("action=USER_DELETED&resourceId={id}"))
        .await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0]["details"],
        json!({"deletedUserEmail": email, "role": "CUSTOMER"})
    );
    // Deleted users' names still resolve in audit entries.
    let registered = w
        .audit(&format!("action=USER_REGISTERED&resourceId={id}"))
        .await;
    assert_eq!(registered[0]["userEmail"], email.as_str());

    // The later auth.user.deleted (origin admin) adds nothing; a second delete is a 404.
    w.wait_processed("auth.user.deleted", 1).await;
    assert_eq!(
        w.audit(&format!("action=USER_DELETED&resourceId={id}"))
            .await
            .len(),
        1
    );
    w.admin_refused(
        Method::DELETE,
        &format!("/api/admin/users/{id}"),
        None,
        (StatusCode::NOT_FOUND, "USER_NOT_FOUND"),
    )
    .await;
    w.admin_refused(
        Method::DELETE,
        "/api/admin/users/nope",
        None,
        (StatusCode::NOT_FOUND, "USER_NOT_FOUND"),
    )
    .await;

    // The email can be registered again, as a new account.
    let again = w.register(&email).await;
    let new_id: Uuid = again.data()["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(new_id, id);
    w.wait_listed(new_id).await;

    w.admin_refused(
        Method::DELETE,
        &format!("/api/admin/users/{}", w.root_id),
        None,
        (StatusCode::CONFLICT, "SELF_MODIFICATION_FORBIDDEN"),
    )
    .await;
}

/// A valid ADMIN token for `user_id`, signed with auth's key, although auth no longer holds
/// that user as an active ADMIN: the situation of an admin demoted while their request is in
/// flight, which is exactly what auth's last-admin guard exists for.
async fn stale_admin_token(w: &World, user_id: Uuid) -> String {
    let mut conn = w.auth.db.pool.acquire().await.unwrap();
    let mut user = payplane_auth::store::users::by_id(&mut conn, user_id)
        .await
        .unwrap()
        .unwrap();
    user.role = payplane_events::auth::Role::Admin;
    payplane_auth::tokens::access_token(
        &w.auth.state.keys,
        "payplane",
        Duration::from_secs(300),
        &user,
        Uuid::new_v4(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_deleted_demoted_or_deactivated() {
    let w = World::new().await;
    let other = w
        .create_user(&new_email(), "Not An Admin", "CUSTOMER")
        .await;
    let stale = stale_admin_token(&w, other).await;
    let root = w.root_id;
    for (method, path, body) in [
        (Method::DELETE, format!("/api/admin/users/{root}"), None),
        (
            Method::PUT,
            format!("/api/admin/users/{root}/role"),
            Some(json!({"role": "CUSTOMER"})),
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{root}/status"),
            Some(json!({"isActive": false})),
        ),
    ] {
        let r = w.admin_as(&stale, method.clone(), &path, body).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "LAST_ADMIN"),
            "{method} {path}"
        );
    }
    // Nothing changed: the root admin still works.
    let me = w.me(&w.root).await;
    assert_eq!(me.data()["role"], "ADMIN");
    assert!(w.audit("action=USER_DELETED").await.is_empty());

    // With a second active admin the same demotion goes through.
    let second = w.create_user(&new_email(), "Second Admin", "ADMIN").await;
    let r = w
        .admin_as(
            &stale,
            Method::PUT,
            &format!("/api/admin/users/{root}/role"),
            Some(json!({"role": "VENDOR"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Now `second` is the last one.
    let r = w
        .admin_as(
            &stale,
            Method::DELETE,
            &format!("/api/admin/users/{second}"),
            None,
        )
        .await;
    assert_eq!(r.code(), "LAST_ADMIN");
}

#[tokio::test]
async fn create_and_update_users_with_every_validation_rule() {
    let w = World::new().await;
    let email = new_email();
    let r = w
        .admin(
            Method::POST,
            "/api/admin/users",
            Some(json!({"email": email.to_uppercase(), "password": PW, "name": "  Vendor  ", "role": "vendor"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.data()["email"], email.as_str());
    assert_eq!(r.data()["name"], "Vendor");
    assert_eq!(r.data()["role"], "VENDOR");
    assert_eq!(r.data()["lastLoginAt"], Value::Null);
    assert_eq!(
        w.get(&format!("/api/admin/users/{id}")).await.status,
        StatusCode::OK
    );
    let created = w
        .audit(&format!("action=USER_CREATED&resourceId={id}"))
        .await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0]["details"],
        json!({"email": email, "role": "VENDOR"})
    );
    assert_eq!(created[0]["userId"], w.root_id.to_string().as_str());
    // The user can log in with the given password.
    assert_eq!(w.login(&email).await.status, StatusCode::OK);

    // Every create rule, each alone, and all together.
    let ok = json!({"email": new_email(), "password": PW, "name": "N", "role": "CUSTOMER"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    for (body, fields) in [
        (json!({}), vec!["email", "name", "password", "role"]),
        (with("email", json!("not-an-email")), vec!["email"]),
        (with("email", json!("a@b")), vec!["email"]),
        (with("email", json!(5)), vec!["email"]),
        (with("password", json!("short1!A")), vec!["password"]),
        (with("password", json!("nouppercase123!")), vec!["password"]),
        (with("password", json!("NoDigitsHere!!")), vec!["password"]),
        (with("password", json!("NoSymbols12345")), vec!["password"]),
        (
            with("password", json!(format!("Aa1!{}", "x".repeat(252)))),
            vec!["password"],
        ),
        (with("name", json!("   ")), vec!["name"]),
        (with("name", json!("x".repeat(256))), vec!["name"]),
        (with("name", json!("a\u{0}b")), vec!["name"]),
        (with("name", json!(true)), vec!["name"]),
        (with("role", json!("SUPERUSER")), vec!["role"]),
        (with("role", Value::Null), vec!["role"]),
    ] {
        let r = w
            .admin(Method::POST, "/api/admin/users", Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.code(), "VALIDATION_ERROR");
        assert_eq!(r.fields_sorted(), fields, "{body}");
    }
    w.admin_refused(
        Method::POST,
        "/api/admin/users",
        Some(with("email", json!(email))),
        (StatusCode::CONFLICT, "EMAIL_EXISTS"),
    )
    .await;

    // Body handling: not an object, bad JSON, wrong content type, empty body.
    let r = w
        .admin(Method::POST, "/api/admin/users", Some(json!([1])))
        .await;
    assert_eq!(r.fields_sorted(), ["body"]);
    let raw = |ct: &'static str, body: &'static str| {
        w.http
            .post(w.admin.url("/api/admin/users"))
            .bearer_auth(&w.root)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = raw("application/json", "{bad").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "INVALID_JSON"
    );
    let r = raw("text/plain", "{}").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = raw("application/json", "").await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "VALIDATION_ERROR"
    );

    // Update: name, no-op, rules, conflicts, lookup.
    let path = format!("/api/admin/users/{id}");
    let r = w
        .admin(Method::PUT, &path, Some(json!({"name": "Renamed"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["name"], "Renamed");
    w.admin_ok(Method::PUT, &path, Some(json!({"name": "Renamed"})))
        .await;
    let updated = w
        .audit(&format!("action=USER_UPDATED&resourceId={id}"))
        .await;
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0]["details"],
        json!({"updatedFields": ["name"], "previous": {"name": "Vendor"}})
    );
    let new_mail = new_email();
    let r = w
        .admin(Method::PUT, &path, Some(json!({"email": new_mail})))
        .await;
    assert_eq!(r.data()["email"], new_mail.as_str());
    for (body, fields) in [
        (json!({}), vec!["body"]),
        (json!({"name": null, "email": null}), vec!["body"]),
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": "x".repeat(256)}), vec!["name"]),
        (json!({"email": "nope"}), vec!["email"]),
        (json!({"name": 1, "email": false}), vec!["email", "name"]),
    ] {
        let r = w.admin(Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.fields_sorted(), fields, "{body}");
    }
    w.admin_refused(
        Method::PUT,
        &path,
        Some(json!({"email": w.root_email})),
        (StatusCode::CONFLICT, "EMAIL_EXISTS"),
    )
    .await;
    w.admin_refused(
        Method::PUT,
        &format!("/api/admin/users/{}", Uuid::new_v4()),
        Some(json!({"name": "x"})),
        (StatusCode::NOT_FOUND, "USER_NOT_FOUND"),
    )
    .await;
    // Validation comes before the id lookup.
    let r = w
        .admin(Method::PUT, "/api/admin/users/zzz", Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn only_admins_get_in() {
    let w = World::new().await;
    let email = new_email();
    let customer = token(&w.register(&email).await);
    let id = Uuid::new_v4();
    let routes = [
        (Method::GET, "/api/admin/users".to_owned()),
        (Method::POST, "/api/admin/users".to_owned()),
        (Method::GET, format!("/api/admin/users/{id}")),
        (Method::PUT, format!("/api/admin/users/{id}")),
        (Method::DELETE, format!("/api/admin/users/{id}")),
        (Method::PUT, format!("/api/admin/users/{id}/role")),
        (Method::PATCH, format!("/api/admin/users/{id}/role")),
        (Method::PATCH, format!("/api/admin/users/{id}/status")),
        (Method::GET, "/api/admin/audit-logs".to_owned()),
        (Method::GET, "/api/admin/audit-logs/actions".to_owned()),
        (Method::GET, "/api/admin/config".to_owned()),
        (Method::POST, "/api/admin/config".to_owned()),
        (Method::GET, "/api/admin/config/a.b".to_owned()),
        (Method::PUT, "/api/admin/config/a.b".to_owned()),
        (Method::DELETE, "/api/admin/config/a.b".to_owned()),
        (Method::GET, "/api/admin/health".to_owned()),
        (Method::GET, "/api/admin/dashboard".to_owned()),
    ];
    for (method, path) in routes {
        let url = w.admin.url(&path);
        let r = w.call(method.clone(), url.clone(), None, None).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            "{method} {path}"
        );
        let r = w
            .call(method.clone(), url.clone(), Some("garbage"), None)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "TOKEN_INVALID"),
            "{method} {path}"
        );
        // The role check comes before the body is read.
        let r = w
            .http
            .request(method.clone(), url)
            .bearer_auth(&customer)
            .header("content-type", "application/json")
            .body("{broken")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    // The OpenAPI document is public and lists every admin route.
    let doc = w
        .call(Method::GET, w.admin.url("/openapi.json"), None, None)
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["paths"]["/api/admin/users/{id}/role"]["patch"].is_object());
    // It describes exactly the served public routes (the router's own table), and over HTTP
    // every documented operation is routed while every other method answers 405.
    let table = payplane_admin::routes::table();
    let (ops, problems) = check_document(&doc.body, &table.public_paths());
    assert!(problems.is_empty(), "{problems:#?}");
    let problems = probe(&ops, |method, path| {
        let w = &w;
        async move {
            let r = w
                .call(method, w.admin.url(&path), None, Some(json!({})))
                .await;
            (r.status, r.code().to_owned())
        }
    })
    .await;
    assert!(problems.is_empty(), "{problems:#?}");
    // The response is enveloped with a request id, and /api answers are not cached.
    let r = w.get("/api/admin/users").await;
    assert_eq!(r.body["success"], true);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(r.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn auth_session_events_reach_the_audit_log_through_the_broker() {
    let w = World::new().await;
    let email = new_email();
    let reg = w.register(&email).await;
    let id = reg.data()["user"]["id"].as_str().unwrap().to_owned();
    let second = w
        .auth_post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": PW, "deviceId": "dev-2"}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let r = w
        .auth_post(
            "/api/auth/password",
            Some(&token(&second)),
            json!({"currentPassword": PW, "newPassword": "NewPassword123!"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = w
        .auth_post("/api/auth/logout", Some(&token(&second)), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let entries = eventually(
        "password and logout entries",
        Duration::from_secs(5),
        || async {
            let e = w.audit(&format!("userId={id}")).await;
            let acts = actions(&e);
            (acts.contains(&"USER_PASSWORD_CHANGED".to_owned())
                && acts.contains(&"USER_LOGOUT".to_owned()))
            .then_some(e)
        },
    )
    .await;
    let pw = entries
        .iter()
        .find(|e| e["action"] == "USER_PASSWORD_CHANGED")
        .unwrap();
    assert_eq!(
        pw["details"]["revokedSessionCount"], 1,
        "the registration session"
    );
    let out = entries
        .iter()
        .find(|e| e["action"] == "USER_LOGOUT")
        .unwrap();
    assert_eq!(out["details"]["allDevices"], false);
    assert_eq!(out["resourceId"], id.as_str());
    // The session ended by the password change is audited with its reason; the one ended by
    // the logout is covered by USER_LOGOUT.
    let revoked = eventually("SESSION_REVOKED", Duration::from_secs(5), || async {
        let e = w.audit("action=SESSION_REVOKED").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["details"]["reason"], "password_changed");
}

#[tokio::test]
async fn writes_answer_503_while_auth_is_unreachable_and_reads_keep_working() {
    let w = World::new().await;
    let id = w.create_user(&new_email(), "Kept", "CUSTOMER").await;
    let World {
        sandbox: _sandbox,
        auth,
        admin,
        http,
        root,
        ..
    } = w;
    auth.stop().await;
    let res = http
        .put(admin.url(&format!("/api/admin/users/{id}/role")))
        .bearer_auth(&root)
        .json(&json!({"role": "VENDOR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    // The directory is a local read model: still served.
    let res = http
        .get(admin.url(&format!("/api/admin/users/{id}")))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["role"], "CUSTOMER");
}
