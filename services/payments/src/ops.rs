//! Operator commands on the payments database: the demo seed (api.md §10). Used by the
//! `payplane` CLI and `payplane dev`.

use chrono::{DateTime, Duration, Utc};
use payplane_events::{ActorType, time};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{money::Amount, status::PaymentStatus};
use crate::store::{
    Ctx, StoreError,
    payments::{self, NewPayment, NewTx},
    users::{self, UserData},
};

/// The demo users as auth seeds them (`payplane_auth::ops::DEMO_USERS`, data.md §9).
pub const DEMO_USERS: [(Uuid, &str, &str, &str); 3] = [
    (
        Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000001),
        "customer@example.com",
        "Customer User",
        "CUSTOMER",
    ),
    (
        Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000002),
        "vendor@example.com",
        "Vendor User",
        "VENDOR",
    ),
    (
        Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000003),
        "admin@example.com",
        "Admin User",
        "ADMIN",
    ),
];

pub const SAMPLE_INSTANT: Uuid = Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000101);
pub const SAMPLE_SCHEDULED: Uuid = Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000102);

/// A user to place in the directory: `(id, email, name, role)`.
pub type SeedUser<'a> = (Uuid, &'a str, &'a str, &'a str);

/// Upserts the demo users into the directory (clearing any deletion mark) and inserts the two
/// sample payments if absent. Emits no events. Pass the users as auth actually holds them
/// (an existing account keeps its id); `DEMO_USERS` holds the fixed ids for new ones. The
/// first user is the customer, the second the vendor. Returns how many payments were created.
pub async fn seed_demo(pool: &PgPool, demo_users: &[SeedUser<'_>]) -> Result<u32, StoreError> {
    let mut tx = pool.begin().await.ctx("begin payments seed")?;
    let now = time::now();
    for (id, email, name, role) in demo_users {
        users::force_upsert(
            &mut tx,
            &UserData {
                id: *id,
                email: &email.to_lowercase(),
                name,
                role,
                is_active: true,
                source_updated_at: now,
            },
        )
        .await?;
    }
    let (Some(customer), Some(vendor)) = (demo_users.first(), demo_users.get(1)) else {
        tx.commit().await.ctx("commit payments seed")?;
        return Ok(0);
    };
    let mut created = 0;
    if payments::get(&mut tx, SAMPLE_INSTANT).await?.is_none() {
        seed_instant(&mut tx, customer.0, vendor.0, now).await?;
        created += 1;
    }
    if payments::get(&mut tx, SAMPLE_SCHEDULED).await?.is_none() {
        seed_scheduled(&mut tx, customer.0, vendor.0, now).await?;
        created += 1;
    }
    tx.commit().await.ctx("commit payments seed")?;
    Ok(created)
}

/// A sample payment of `cents` in USD from the first party to the second, of a type with its
/// description, as a fresh one is: pending, not yet at the PSP, no idempotency claim. Each
/// sample sets what differs.
fn sample<'a>(
    id: Uuid,
    (sender_id, recipient_id): (Uuid, Uuid),
    cents: u32,
    (payment_type, description): (&'a str, &'a str),
    now: DateTime<Utc>,
) -> NewPayment<'a> {
    NewPayment {
        id,
        sender_id,
        recipient_id,
        amount: Amount::from_cents(cents).unwrap_or(Amount::MIN),
        currency: "USD",
        payment_type,
        description,
        metadata: None,
        scheduled_for: None,
        idempotency_key: None,
        idempotency_since: None,
        status: PaymentStatus::Pending,
        psp_transaction_id: None,
        psp_status: None,
        completed_at: None,
        now,
    }
}

/// The completed sample payment with its three transactions.
async fn seed_instant(
    conn: &mut PgConnection,
    customer: Uuid,
    vendor: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let kind = ("instant", "Sample instant payment");
    let sample = sample(SAMPLE_INSTANT, (customer, vendor), 100_000, kind, now);
    payments::insert(
        &mut *conn,
        &NewPayment {
            status: PaymentStatus::Completed,
            psp_transaction_id: Some("PSP_TX_123"),
            psp_status: Some("succeeded"),
            completed_at: Some(now),
            ..sample
        },
    )
    .await?;
    for (i, (status, prev, msg)) in [
        (PaymentStatus::Pending, None, "Payment created"),
        (
            PaymentStatus::Processing,
            Some(PaymentStatus::Pending),
            "Submitted to payment processor",
        ),
        (
            PaymentStatus::Completed,
            Some(PaymentStatus::Processing),
            "Payment completed",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        payments::insert_tx(
            &mut *conn,
            &NewTx {
                payment_id: SAMPLE_INSTANT,
                status,
                previous_status: prev,
                status_message: msg,
                psp_transaction_id: (i > 0).then_some("PSP_TX_123"),
                actor_id: (i == 0).then_some(customer),
                actor_type: if i == 0 {
                    ActorType::User
                } else {
                    ActorType::System
                },
                metadata: None,
                at: now,
            },
        )
        .await?;
    }
    Ok(())
}

/// The pending scheduled sample payment.
async fn seed_scheduled(
    conn: &mut PgConnection,
    customer: Uuid,
    vendor: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let kind = ("scheduled", "Sample scheduled payment");
    let sample = sample(SAMPLE_SCHEDULED, (vendor, customer), 50_000, kind, now);
    payments::insert(
        &mut *conn,
        &NewPayment {
            scheduled_for: Some(now + Duration::days(7)),
            ..sample
        },
    )
    .await?;
    payments::insert_tx(
        &mut *conn,
        &NewTx {
            metadata: Some(json!({ "pspReference": "PSP_TX_456" })),
            ..NewTx::created(SAMPLE_SCHEDULED, Some(vendor), ActorType::User, now)
        },
    )
    .await?;
    Ok(())
}
