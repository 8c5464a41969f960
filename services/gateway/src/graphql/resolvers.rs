//! The `Query` and `Mutation` roots of api.md §9.3, each field one REST call of §9.4, and
//! `Payment.transactions` through a per-request single-flight map: list items carry `sender` and
//! `recipient` already (payments' own user directory), so only `transactions` needs the detail
//! endpoint, fetched once per distinct payment id, concurrently, and only when selected.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use async_graphql::{ComplexObject, Context, ErrorExtensions, ID, MaybeUndefined, Object, Result};
use http::Method;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::sync::{OnceCell, Semaphore};

use super::{
    rest::{Rest, RestError, Service, segment},
    types::{
        AnyJson, AuditLogPage, AuthPayload, CreatePaymentInput, DateTime, Decimal, LoginInput,
        ManagedUser, ManagedUserPage, Payment, PaymentPage, PaymentSortField, PaymentStatus,
        PaymentTransaction, PaymentType, Preferences, Profile, RegisterInput, SortOrder,
        SystemConfig, UpdatePaymentInput, UpdatePreferencesInput, UpdateProfileInput, User,
        UserRole, UserSortField, rest_value,
    },
};

/// At most this many detail calls of one request in flight at once.
const DETAIL_CONCURRENCY: usize = 16;

/// One REST call decoded into a GraphQL type; a REST error becomes the field's error (§9.2).
async fn call<T: DeserializeOwned>(
    ctx: &Context<'_>,
    service: Service,
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> Result<T> {
    ctx.data::<Rest>()?
        .call(service, method, path, query, body, &[])
        .await
        .map_err(|e| e.extend())
}

/// `GET path` of `service`.
async fn get<T: DeserializeOwned>(ctx: &Context<'_>, service: Service, path: &str) -> Result<T> {
    call(ctx, service, Method::GET, path, &[], None).await
}

/// `method path` of `service` with `input` as the JSON body.
async fn send<T: DeserializeOwned>(
    ctx: &Context<'_>,
    service: Service,
    method: Method,
    path: &str,
    input: &impl Serialize,
) -> Result<T> {
    let body = serde_json::to_value(input).unwrap_or(Value::Null);
    call(ctx, service, method, path, &[], Some(&body)).await
}

/// `page` and `limit`, then each filter, in that order, when given (explicit `null` leaves
/// REST's default).
fn query<const N: usize>(
    page: Option<i32>,
    limit: Option<i32>,
    filters: [(&'static str, Option<String>); N],
) -> Vec<(&'static str, String)> {
    [
        ("page", page.map(|p| p.to_string())),
        ("limit", limit.map(|l| l.to_string())),
    ]
    .into_iter()
    .chain(filters)
    .filter_map(|(name, v)| Some((name, v?)))
    .collect()
}

/// One request's payment details (with transactions) by id: each distinct id is fetched once,
/// however many fields ask for it and whenever they ask. A fetch still in flight is awaited, not
/// repeated; that is why this is a single-flight map and not a batching loader, whose cache only
/// covers batches that have finished and so fetched an id twice when a slow machine split the
/// selections across batches.
pub struct Details {
    rest: Rest,
    slots: Mutex<HashMap<String, Arc<DetailSlot>>>,
    permits: Semaphore,
}

/// The transactions of one payment once fetched (none when it vanished from view).
type DetailSlot = OnceCell<Result<Vec<PaymentTransaction>, Arc<RestError>>>;

impl Details {
    pub fn new(rest: Rest) -> Self {
        Self {
            rest,
            slots: Mutex::new(HashMap::new()),
            permits: Semaphore::new(DETAIL_CONCURRENCY),
        }
    }

    /// The payment's transactions; a payment that vanished from view has none to show, other
    /// failures fail the field.
    async fn transactions(&self, id: &str) -> Result<Vec<PaymentTransaction>, Arc<RestError>> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.entry(id.to_owned()).or_default().clone()
        };
        slot.get_or_init(|| async {
            // A closed semaphore cannot happen (it is never closed); going on unthrottled is
            // the harmless answer if it ever did.
            let _permit = self.permits.acquire().await.ok();
            let path = format!("/api/payments/{}", segment(id));
            match self
                .rest
                .call::<Value>(Service::Payments, Method::GET, &path, &[], None, &[])
                .await
            {
                Ok(v) => Ok(serde_json::from_value::<Payment>(v)
                    .ok()
                    .and_then(|p| p.inline_transactions)
                    .unwrap_or_default()),
                Err(e) if e.code == "PAYMENT_NOT_FOUND" => Ok(Vec::new()),
                Err(e) => Err(Arc::new(e)),
            }
        })
        .await
        .clone()
    }
}

#[ComplexObject]
impl Payment {
    /// From the detail endpoint when selected (list items omit them).
    async fn transactions(&self, ctx: &Context<'_>) -> Result<Vec<PaymentTransaction>> {
        if let Some(t) = &self.inline_transactions {
            return Ok(t.clone());
        }
        ctx.data::<Details>()?
            .transactions(&self.id)
            .await
            .map_err(|e| e.extend())
    }
}

pub struct Query;

#[Object]
impl Query {
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        get(ctx, Service::Auth, "/api/auth/me").await
    }

    async fn payment(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Payment>> {
        let path = format!("/api/payments/{}", segment(&id));
        get(ctx, Service::Payments, &path).await.map(Some)
    }

    #[expect(clippy::too_many_arguments, reason = "the arguments of api.md §9.3")]
    async fn payments(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(1)")] page: Option<i32>,
        #[graphql(default_with = "Some(10)")] limit: Option<i32>,
        #[graphql(default_with = "Some(PaymentSortField::CreatedAt)")] sort: Option<
            PaymentSortField,
        >,
        #[graphql(default_with = "Some(SortOrder::Desc)")] order: Option<SortOrder>,
        status: Option<PaymentStatus>,
        #[graphql(name = "type")] kind: Option<PaymentType>,
        start_date: Option<DateTime>,
        end_date: Option<DateTime>,
        min_amount: Option<Decimal>,
        max_amount: Option<Decimal>,
    ) -> Result<PaymentPage> {
        let amount = |Decimal(v): Decimal| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        let q = query(
            page,
            limit,
            [
                ("sort", sort.map(|s| rest_value(&s))),
                ("order", order.map(|o| rest_value(&o))),
                ("status", status.map(|s| rest_value(&s))),
                ("type", kind.map(|t| rest_value(&t))),
                ("startDate", start_date.map(|d| d.0)),
                ("endDate", end_date.map(|d| d.0)),
                ("minAmount", min_amount.map(amount)),
                ("maxAmount", max_amount.map(amount)),
            ],
        );
        call(
            ctx,
            Service::Payments,
            Method::GET,
            "/api/payments",
            &q,
            None,
        )
        .await
    }

    async fn profile(&self, ctx: &Context<'_>) -> Result<Profile> {
        get(ctx, Service::Profile, "/api/profile").await
    }

    /// ADMIN only.
    #[expect(clippy::too_many_arguments, reason = "the arguments of api.md §9.3")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(1)")] page: Option<i32>,
        #[graphql(default_with = "Some(10)")] limit: Option<i32>,
        #[graphql(default_with = "Some(UserSortField::CreatedAt)")] sort: Option<UserSortField>,
        #[graphql(default_with = "Some(SortOrder::Desc)")] order: Option<SortOrder>,
        role: Option<UserRole>,
        search: Option<String>,
        is_active: Option<bool>,
    ) -> Result<ManagedUserPage> {
        let q = query(
            page,
            limit,
            [
                ("sort", sort.map(|s| rest_value(&s))),
                ("order", order.map(|o| rest_value(&o))),
                ("role", role.map(|r| rest_value(&r))),
                ("search", search),
                ("isActive", is_active.map(|a| a.to_string())),
            ],
        );
        call(
            ctx,
            Service::Admin,
            Method::GET,
            "/api/admin/users",
            &q,
            None,
        )
        .await
    }

    /// ADMIN only.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ManagedUser>> {
        let path = format!("/api/admin/users/{}", segment(&id));
        get(ctx, Service::Admin, &path).await.map(Some)
    }

    /// ADMIN only.
    #[expect(clippy::too_many_arguments, reason = "the arguments of api.md §9.3")]
    async fn audit_logs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(1)")] page: Option<i32>,
        #[graphql(default_with = "Some(20)")] limit: Option<i32>,
        action: Option<String>,
        user_id: Option<ID>,
        resource_type: Option<String>,
        resource_id: Option<String>,
        start_date: Option<DateTime>,
        end_date: Option<DateTime>,
    ) -> Result<AuditLogPage> {
        let q = query(
            page,
            limit,
            [
                ("action", action),
                ("userId", user_id.map(|i| i.0)),
                ("resourceType", resource_type),
                ("resourceId", resource_id),
                ("startDate", start_date.map(|d| d.0)),
                ("endDate", end_date.map(|d| d.0)),
            ],
        );
        let path = "/api/admin/audit-logs";
        call(ctx, Service::Admin, Method::GET, path, &q, None).await
    }

    /// ADMIN only.
    async fn system_config(&self, ctx: &Context<'_>, key: String) -> Result<Option<SystemConfig>> {
        let path = format!("/api/admin/config/{}", segment(&key));
        get(ctx, Service::Admin, &path).await.map(Some)
    }

    /// ADMIN only.
    async fn system_configs(&self, ctx: &Context<'_>) -> Result<Vec<SystemConfig>> {
        get(ctx, Service::Admin, "/api/admin/config").await
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        send(ctx, Service::Auth, Method::POST, "/api/auth/login", &input).await
    }

    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        send(
            ctx,
            Service::Auth,
            Method::POST,
            "/api/auth/register",
            &input,
        )
        .await
    }

    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)")] all_devices: Option<bool>,
    ) -> Result<bool> {
        let body = json!({ "allDevices": all_devices.unwrap_or(false) });
        // Whatever the answer's `data`, success is `true`.
        let _: Value = send(ctx, Service::Auth, Method::POST, "/api/auth/logout", &body).await?;
        Ok(true)
    }

    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let body = json!({ "refreshToken": refresh_token });
        send(ctx, Service::Auth, Method::POST, "/api/auth/refresh", &body).await
    }

    async fn create_payment(
        &self,
        ctx: &Context<'_>,
        input: CreatePaymentInput,
        idempotency_key: Option<String>,
    ) -> Result<Payment> {
        let extra: Vec<(&'static str, String)> = idempotency_key
            .map(|k| ("idempotency-key", k))
            .into_iter()
            .collect();
        let body = serde_json::to_value(&input).unwrap_or(Value::Null);
        ctx.data::<Rest>()?
            .call(
                Service::Payments,
                Method::POST,
                "/api/payments",
                &[],
                Some(&body),
                &extra,
            )
            .await
            .map_err(|e| e.extend())
    }

    async fn update_payment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePaymentInput,
    ) -> Result<Payment> {
        let path = format!("/api/payments/{}", segment(&id));
        send(ctx, Service::Payments, Method::PUT, &path, &input).await
    }

    async fn update_payment_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: PaymentStatus,
        reason: Option<String>,
    ) -> Result<Payment> {
        let path = format!("/api/payments/{}/status", segment(&id));
        let mut b = json!({ "status": rest_value(&status) });
        if let Some(r) = reason {
            b["reason"] = Value::String(r);
        }
        send(ctx, Service::Payments, Method::PATCH, &path, &b).await
    }

    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
    ) -> Result<Profile> {
        send(ctx, Service::Profile, Method::PUT, "/api/profile", &input).await
    }

    async fn update_preferences(
        &self,
        ctx: &Context<'_>,
        input: UpdatePreferencesInput,
    ) -> Result<Preferences> {
        let path = "/api/profile/preferences";
        send(ctx, Service::Profile, Method::PUT, path, &input).await
    }

    /// ADMIN only.
    async fn update_user_role(
        &self,
        ctx: &Context<'_>,
        id: ID,
        role: UserRole,
    ) -> Result<ManagedUser> {
        let path = format!("/api/admin/users/{}/role", segment(&id));
        let body = json!({ "role": rest_value(&role) });
        send(ctx, Service::Admin, Method::PUT, &path, &body).await
    }

    /// ADMIN only. `value` must be given (JSON `null` is a value); absent → REST's
    /// `VALIDATION_ERROR`.
    async fn update_system_config(
        &self,
        ctx: &Context<'_>,
        key: String,
        value: MaybeUndefined<AnyJson>,
        description: MaybeUndefined<String>,
    ) -> Result<SystemConfig> {
        let path = format!("/api/admin/config/{}", segment(&key));
        let mut b = serde_json::Map::new();
        // Absent stays absent; explicit `null` is sent as null.
        for (name, v) in [
            ("value", value.map_value(|v| v.0)),
            ("description", description.map_value(Value::String)),
        ] {
            if let Some(v) = Option::<Option<Value>>::from(v) {
                b.insert(name.into(), v.unwrap_or(Value::Null));
            }
        }
        send(ctx, Service::Admin, Method::PUT, &path, &Value::Object(b)).await
    }
}

#[cfg(test)]
mod cost {
    //! Where a 100-payment GraphQL read spends the gateway's CPU (run with `--release
    //! --ignored --nocapture`); the figures are in the gateway README.

    use std::time::Instant;

    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use super::super::types::PaymentPage;

    struct Canned(PaymentPage);

    #[Object]
    impl Canned {
        async fn payments(&self) -> PaymentPage {
            self.0.clone()
        }
    }

    fn page_json(n: usize) -> Vec<u8> {
        let party = |id: &str, name: &str| serde_json::json!({"id": id, "email": format!("{name}@example.com"), "name": name});
        let payments: Vec<_> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "id": format!("00000000-0000-4000-8000-{i:012}"),
                    "senderId": "00000000-0000-4000-8000-00000000000a",
                    "recipientId": "00000000-0000-4000-8000-00000000000b",
                    "amount": format!("{i}.50"), "currency": "USD", "status": "completed",
                    "type": "instant", "description": format!("Bench payment {i}"), "metadata": null,
                    "pspTransactionId": "sim_123", "pspStatus": "succeeded", "failureReason": null,
                    "scheduledFor": null, "completedAt": "2026-12-06T10:00:00.000Z",
                    "createdAt": "2026-12-06T10:00:00.000Z", "updatedAt": "2026-12-06T10:00:00.000Z",
                    "sender": party("00000000-0000-4000-8000-00000000000a", "Sender"),
                    "recipient": party("00000000-0000-4000-8000-00000000000b", "Recipient"),
                })
            })
            .collect();
        serde_json::to_vec(
            &serde_json::json!({"success": true, "data": {"payments": payments,
            "pagination": {"page": 1, "limit": 100, "total": n, "totalPages": 1}}}),
        )
        .unwrap()
    }

    #[tokio::test]
    #[ignore = "a measurement, not a check"]
    async fn cost_of_a_100_payment_read() {
        #[derive(serde::Deserialize)]
        struct Envelope {
            data: PaymentPage,
        }
        let bytes = page_json(100);
        let rounds = 300;
        let t = Instant::now();
        let mut page = None;
        for _ in 0..rounds {
            page = Some(serde_json::from_slice::<Envelope>(&bytes).unwrap().data);
        }
        let decode = t.elapsed() / rounds;
        let schema = Schema::new(Canned(page.unwrap()), EmptyMutation, EmptySubscription);
        let q = "{ payments { payments { id senderId recipientId amount currency status type description metadata pspTransactionId pspStatus failureReason scheduledFor completedAt createdAt updatedAt sender { id email name } recipient { id email name } } pagination { page limit total totalPages } } }";
        let t = Instant::now();
        let mut res = None;
        for _ in 0..rounds {
            res = Some(schema.execute(q).await);
        }
        let execute = t.elapsed() / rounds;
        let res = res.unwrap();
        assert!(res.errors.is_empty());
        let t = Instant::now();
        let mut len = 0;
        for _ in 0..rounds {
            len = serde_json::to_vec(&res).unwrap().len();
        }
        let encode = t.elapsed() / rounds;
        println!(
            "100 payments, {} B in, {len} B out: decode {decode:?}, execute {execute:?}, encode {encode:?}",
            bytes.len()
        );
    }
}
