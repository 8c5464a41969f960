//! The five user journeys of issue #6, driven only through the gateway (HTTP and WebSocket)
//! against the whole platform running as processes on the real PostgreSQL, RabbitMQ and Redis.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]

use std::{path::Path, time::Duration};

use payplane_e2e::{Api, Platform, Session, Socket, client::transaction_statuses, ws::Closed};
use serde_json::{Value, json};

const NODE: &str = env!("CARGO_BIN_EXE_payplane-e2e-node");
const EVENT_WAIT: Duration = Duration::from_secs(20);
const DIRECTORY_WAIT: Duration = Duration::from_secs(10);

async fn admin_lists(api: &Api, admin: &Session, user_id: &str) -> anyhow::Result<Option<Value>> {
    let reply = api
        .get(&format!("/api/admin/users/{user_id}"), &admin.access_token)
        .await?;
    Ok((reply.status == 200).then(|| reply.data().clone()))
}

async fn audit_actions(api: &Api, admin: &Session, query: &str) -> anyhow::Result<Vec<String>> {
    let reply = api
        .get(
            &format!("/api/admin/audit-logs?limit=100&{query}"),
            &admin.access_token,
        )
        .await?
        .expect_status(200)?;
    Ok(reply.data()["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_journeys_through_the_gateway() {
    let (platform, api) = Platform::start_default(Path::new(NODE)).await.unwrap();
    let run = &platform.run_id;
    let started = std::time::Instant::now();

    // 1. register customer and vendor → log in → profile exists → admin sees both in the
    //    directory and in the audit log.
    let customer_email = format!("customer-{run}@example.com");
    let vendor_email = format!("vendor-{run}@example.com");
    api.register(&customer_email, "Journey Customer", "CUSTOMER", "c-phone")
        .await
        .unwrap();
    let vendor = api
        .register(&vendor_email, "Journey Vendor", "VENDOR", "v-laptop")
        .await
        .unwrap();
    let customer = api.login(&customer_email, "c-laptop").await.unwrap();
    let admin = api.login(&platform.admin_email, "a-desk").await.unwrap();

    let profile = api
        .get("/api/profile", &customer.access_token)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    assert_eq!(profile.data()["userId"], customer.user_id.as_str());
    assert_eq!(profile.data()["preferences"]["currency"], "USD");

    for (user, email) in [(&customer, &customer_email), (&vendor, &vendor_email)] {
        let listed = api
            .eventually(DIRECTORY_WAIT, "user in the admin directory", || {
                admin_lists(&api, &admin, &user.user_id)
            })
            .await
            .unwrap();
        assert_eq!(listed["email"], email.as_str());
        assert_eq!(listed["isActive"], true);
    }
    let search = api
        .get(
            &format!("/api/admin/users?search={run}&limit=100"),
            &admin.access_token,
        )
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    let emails: Vec<&str> = search.data()["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert!(emails.contains(&customer_email.as_str()) && emails.contains(&vendor_email.as_str()));
    api.eventually(
        DIRECTORY_WAIT,
        "registration and login in the audit log",
        || async {
            let actions =
                audit_actions(&api, &admin, &format!("userId={}", customer.user_id)).await?;
            Ok((actions.iter().any(|a| a == "USER_REGISTERED")
                && actions.iter().any(|a| a == "USER_LOGIN"))
            .then_some(()))
        },
    )
    .await
    .unwrap();
    println!("journey 1 done at {:?}", started.elapsed());

    // 2. the customer pays the vendor with an Idempotency-Key: both parties' sockets and an
    //    admin's receive created → processing → completed; the detail has three transactions;
    //    a retry with the same key returns the same payment.
    let mut customer_ws = Socket::connect(&platform.gateway_url, &customer.access_token)
        .await
        .unwrap();
    let mut vendor_ws = Socket::connect(&platform.gateway_url, &vendor.access_token)
        .await
        .unwrap();
    let mut admin_ws = Socket::connect(&platform.gateway_url, &admin.access_token)
        .await
        .unwrap();
    assert_eq!(customer_ws.connected["userId"], customer.user_id.as_str());

    let body = json!({"type": "instant", "amount": "25.00", "currency": "USD",
                      "description": "Journey payment", "recipientId": vendor.user_id});
    let key = format!("journey-{run}");
    let created = api
        .create_payment(&customer.access_token, &body, &key)
        .await
        .unwrap()
        .expect_status(201)
        .unwrap();
    let payment_id = created.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(created.data()["amount"], "25.00");
    assert_eq!(created.data()["status"], "pending");

    for socket in [&mut customer_ws, &mut vendor_ws, &mut admin_ws] {
        let ev = socket
            .wait_event("payment:created", &payment_id, EVENT_WAIT)
            .await
            .unwrap();
        assert_eq!(ev["payload"]["data"]["amount"], "25.00");
        socket
            .wait_event("payment:processing", &payment_id, EVENT_WAIT)
            .await
            .unwrap();
        let done = socket
            .wait_event("payment:completed", &payment_id, EVENT_WAIT)
            .await
            .unwrap();
        assert_eq!(done["payload"]["data"]["status"], "completed");
    }
    let detail = api
        .get(
            &format!("/api/payments/{payment_id}"),
            &customer.access_token,
        )
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    assert_eq!(detail.data()["status"], "completed");
    assert_eq!(
        transaction_statuses(detail.data()),
        ["pending", "processing", "completed"]
    );
    let replay = api
        .create_payment(&customer.access_token, &body, &key)
        .await
        .unwrap()
        .expect_status(201)
        .unwrap();
    assert_eq!(replay.data()["id"], payment_id.as_str());
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    println!("journey 2 done at {:?}", started.elapsed());

    // 3. the vendor's report includes the payment; the admin dashboard counts it.
    let report = api
        .get("/api/payments/reports", &vendor.access_token)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    assert_eq!(report.data()["totalPayments"], 1);
    assert_eq!(report.data()["byStatus"]["completed"], 1);
    assert_eq!(report.data()["byCurrency"]["USD"]["amount"], "25.00");
    let dashboard = api
        .get("/api/admin/dashboard", &admin.access_token)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    assert_eq!(
        dashboard.data()["payments"]["total"],
        1,
        "{}",
        dashboard.body
    );
    assert_eq!(dashboard.data()["payments"]["byStatus"]["completed"], 1);
    assert_eq!(
        dashboard.data()["payments"]["volumeByCurrency"]["USD"],
        "25.00"
    );
    println!("journey 3 done at {:?}", started.elapsed());

    // 4. the admin demotes the vendor → the vendor's next refresh carries the new role (and the
    //    vendor's socket is told to re-authenticate with 4002); the admin deactivates the
    //    customer → the customer's socket closes with 4001 and REST calls get 401.
    api.patch(
        &format!("/api/admin/users/{}/role", vendor.user_id),
        &admin.access_token,
        &json!({"role": "CUSTOMER"}),
    )
    .await
    .unwrap()
    .expect_status(200)
    .unwrap();
    assert_eq!(
        vendor_ws.wait_close(EVENT_WAIT).await.unwrap(),
        Closed::Code(4002)
    );
    let refreshed = api.refresh(&vendor).await.unwrap();
    assert_eq!(refreshed.role, "CUSTOMER");
    let me = api
        .get("/api/auth/me", &refreshed.access_token)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    assert_eq!(me.data()["role"], "CUSTOMER");
    let forbidden = api
        .get("/api/payments/reports", &refreshed.access_token)
        .await
        .unwrap();
    assert_eq!(forbidden.status, 403, "a CUSTOMER may not read reports");

    api.patch(
        &format!("/api/admin/users/{}/status", customer.user_id),
        &admin.access_token,
        &json!({"isActive": false, "reason": "journey 4"}),
    )
    .await
    .unwrap()
    .expect_status(200)
    .unwrap();
    assert_eq!(
        customer_ws.wait_close(EVENT_WAIT).await.unwrap(),
        Closed::Code(4001)
    );
    let refused = api
        .get("/api/payments", &customer.access_token)
        .await
        .unwrap();
    assert_eq!(refused.status, 401);
    assert_eq!(refused.code(), "SESSION_REVOKED");
    let login = api
        .post(
            "/api/auth/login",
            None,
            &json!({"email": customer_email, "password": payplane_e2e::PASSWORD}),
        )
        .await
        .unwrap();
    assert_eq!(
        (login.status.as_u16(), login.code()),
        (403, "ACCOUNT_DISABLED")
    );
    println!("journey 4 done at {:?}", started.elapsed());

    // 5. logout on one device leaves the other device's session working; logout-others ends it
    //    and closes its socket.
    let email = format!("devices-{run}@example.com");
    let phone = api
        .register(&email, "Two Devices", "CUSTOMER", "phone")
        .await
        .unwrap();
    let laptop = api.login(&email, "laptop").await.unwrap();
    let mut laptop_ws = Socket::connect(&platform.gateway_url, &laptop.access_token)
        .await
        .unwrap();
    api.logout(&phone).await.unwrap();
    assert_eq!(
        api.get("/api/auth/me", &phone.access_token)
            .await
            .unwrap()
            .code(),
        "SESSION_REVOKED"
    );
    api.get("/api/auth/me", &laptop.access_token)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    let tablet = api.login(&email, "tablet").await.unwrap();
    let others = api
        .post(
            "/api/auth/devices/logout-others",
            Some(&tablet.access_token),
            &json!({}),
        )
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    assert_eq!(others.data()["loggedOutCount"], 1);
    assert_eq!(
        laptop_ws.wait_close(EVENT_WAIT).await.unwrap(),
        Closed::Code(4001)
    );
    assert_eq!(
        api.get("/api/auth/me", &laptop.access_token)
            .await
            .unwrap()
            .code(),
        "SESSION_REVOKED"
    );
    api.get("/api/auth/me", &tablet.access_token)
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    println!("journey 5 done at {:?}", started.elapsed());
    drop(admin_ws);
}
