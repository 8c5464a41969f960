//! The `Query` and `Mutation` roots of api.md §9.3, each field one REST call of §9.4, and
//! `Payment.transactions` through a per-request loader: list items carry `sender` and
//! `recipient` already (payments' own user directory), so only `transactions` needs the detail
//! endpoint, fetched once per distinct payment id, concurrently, and only when selected.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    ComplexObject, Context, ErrorExtensions, ID, MaybeUndefined, Object, Result,
    dataloader::{DataLoader, HashMapCache, Loader},
};
use futures::{StreamExt, stream};
use http::Method;
use serde_json::{Value, json};

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

fn rest<'a>(ctx: &Context<'a>) -> Result<&'a Rest> {
    ctx.data::<Rest>()
}

/// `page` and `limit` when given (explicit `null` leaves REST's default).
fn paging(page: Option<i32>, limit: Option<i32>) -> Vec<(&'static str, String)> {
    let mut q = Vec::with_capacity(10);
    if let Some(p) = page {
        q.push(("page", p.to_string()));
    }
    if let Some(l) = limit {
        q.push(("limit", l.to_string()));
    }
    q
}

fn body<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Loads payment details (with transactions) by id for one request.
pub struct DetailLoader(pub Rest);

impl Loader<String> for DetailLoader {
    type Value = Payment;
    type Error = Arc<RestError>;

    async fn load(
        &self,
        keys: &[String],
    ) -> std::result::Result<HashMap<String, Payment>, Self::Error> {
        let rest = &self.0;
        let results: Vec<_> = stream::iter(keys.iter().cloned())
            .map(|id| async move {
                let path = format!("/api/payments/{}", segment(&id));
                let r = rest
                    .call(Service::Payments, Method::GET, &path, &[], None, &[])
                    .await;
                (id, r)
            })
            .buffer_unordered(DETAIL_CONCURRENCY)
            .collect()
            .await;
        let mut out = HashMap::with_capacity(results.len());
        for (id, r) in results {
            match r {
                Ok(v) => {
                    if let Ok(p) = serde_json::from_value::<Payment>(v) {
                        out.insert(id, p);
                    }
                }
                // A payment that vanished from view has no transactions to show; other
                // failures fail the field.
                Err(e) if e.code == "PAYMENT_NOT_FOUND" => {}
                Err(e) => return Err(Arc::new(e)),
            }
        }
        Ok(out)
    }
}

#[ComplexObject]
impl Payment {
    /// From the detail endpoint when selected (list items omit them).
    async fn transactions(&self, ctx: &Context<'_>) -> Result<Vec<PaymentTransaction>> {
        if let Some(t) = &self.inline_transactions {
            return Ok(t.clone());
        }
        let loader = ctx.data::<DataLoader<DetailLoader, HashMapCache>>()?;
        match loader.load_one(self.id.to_string()).await {
            Ok(p) => Ok(p.and_then(|p| p.inline_transactions).unwrap_or_default()),
            Err(e) => Err(e.extend()),
        }
    }
}

pub struct Query;

#[Object]
impl Query {
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        rest(ctx)?
            .typed(Service::Auth, Method::GET, "/api/auth/me", &[], None)
            .await
    }

    async fn payment(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Payment>> {
        let path = format!("/api/payments/{}", segment(&id));
        let p: Payment = rest(ctx)?
            .typed(Service::Payments, Method::GET, &path, &[], None)
            .await?;
        Ok(Some(p))
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
        let mut q = paging(page, limit);
        if let Some(s) = sort {
            q.push(("sort", rest_value(&s)));
        }
        if let Some(o) = order {
            q.push(("order", rest_value(&o)));
        }
        if let Some(s) = status {
            q.push(("status", rest_value(&s)));
        }
        if let Some(t) = kind {
            q.push(("type", rest_value(&t)));
        }
        if let Some(d) = start_date {
            q.push(("startDate", d.0));
        }
        if let Some(d) = end_date {
            q.push(("endDate", d.0));
        }
        for (name, v) in [("minAmount", min_amount), ("maxAmount", max_amount)] {
            if let Some(Decimal(v)) = v {
                q.push((
                    name,
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                ));
            }
        }
        rest(ctx)?
            .typed(Service::Payments, Method::GET, "/api/payments", &q, None)
            .await
    }

    async fn profile(&self, ctx: &Context<'_>) -> Result<Profile> {
        rest(ctx)?
            .typed(Service::Profile, Method::GET, "/api/profile", &[], None)
            .await
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
        let mut q = paging(page, limit);
        if let Some(s) = sort {
            q.push(("sort", rest_value(&s)));
        }
        if let Some(o) = order {
            q.push(("order", rest_value(&o)));
        }
        if let Some(r) = role {
            q.push(("role", rest_value(&r)));
        }
        if let Some(s) = search {
            q.push(("search", s));
        }
        if let Some(a) = is_active {
            q.push(("isActive", a.to_string()));
        }
        rest(ctx)?
            .typed(Service::Admin, Method::GET, "/api/admin/users", &q, None)
            .await
    }

    /// ADMIN only.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ManagedUser>> {
        let path = format!("/api/admin/users/{}", segment(&id));
        let u: ManagedUser = rest(ctx)?
            .typed(Service::Admin, Method::GET, &path, &[], None)
            .await?;
        Ok(Some(u))
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
        let mut q = paging(page, limit);
        for (name, v) in [
            ("action", action),
            ("userId", user_id.map(|i| i.0)),
            ("resourceType", resource_type),
            ("resourceId", resource_id),
            ("startDate", start_date.map(|d| d.0)),
            ("endDate", end_date.map(|d| d.0)),
        ] {
            if let Some(v) = v {
                q.push((name, v));
            }
        }
        rest(ctx)?
            .typed(
                Service::Admin,
                Method::GET,
                "/api/admin/audit-logs",
                &q,
                None,
            )
            .await
    }

    /// ADMIN only.
    async fn system_config(&self, ctx: &Context<'_>, key: String) -> Result<Option<SystemConfig>> {
        let path = format!("/api/admin/config/{}", segment(&key));
        let c: SystemConfig = rest(ctx)?
            .typed(Service::Admin, Method::GET, &path, &[], None)
            .await?;
        Ok(Some(c))
    }

    /// ADMIN only.
    async fn system_configs(&self, ctx: &Context<'_>) -> Result<Vec<SystemConfig>> {
        rest(ctx)?
            .typed(Service::Admin, Method::GET, "/api/admin/config", &[], None)
            .await
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        rest(ctx)?
            .typed(
                Service::Auth,
                Method::POST,
                "/api/auth/login",
                &[],
                Some(&body(&input)),
            )
            .await
    }

    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        rest(ctx)?
            .typed(
                Service::Auth,
                Method::POST,
                "/api/auth/register",
                &[],
                Some(&body(&input)),
            )
            .await
    }

    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)")] all_devices: Option<bool>,
    ) -> Result<bool> {
        rest(ctx)?
            .call(
                Service::Auth,
                Method::POST,
                "/api/auth/logout",
                &[],
                Some(&json!({ "allDevices": all_devices.unwrap_or(false) })),
                &[],
            )
            .await
            .map_err(|e| e.extend())?;
        Ok(true)
    }

    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        rest(ctx)?
            .typed(
                Service::Auth,
                Method::POST,
                "/api/auth/refresh",
                &[],
                Some(&json!({ "refreshToken": refresh_token })),
            )
            .await
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
        let r = rest(ctx)?;
        let data = r
            .call(
                Service::Payments,
                Method::POST,
                "/api/payments",
                &[],
                Some(&body(&input)),
                &extra,
            )
            .await
            .map_err(|e| e.extend())?;
        decode(r, data)
    }

    async fn update_payment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePaymentInput,
    ) -> Result<Payment> {
        let path = format!("/api/payments/{}", segment(&id));
        rest(ctx)?
            .typed(
                Service::Payments,
                Method::PUT,
                &path,
                &[],
                Some(&body(&input)),
            )
            .await
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
        rest(ctx)?
            .typed(Service::Payments, Method::PATCH, &path, &[], Some(&b))
            .await
    }

    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
    ) -> Result<Profile> {
        rest(ctx)?
            .typed(
                Service::Profile,
                Method::PUT,
                "/api/profile",
                &[],
                Some(&body(&input)),
            )
            .await
    }

    async fn update_preferences(
        &self,
        ctx: &Context<'_>,
        input: UpdatePreferencesInput,
    ) -> Result<Preferences> {
        rest(ctx)?
            .typed(
                Service::Profile,
                Method::PUT,
                "/api/profile/preferences",
                &[],
                Some(&body(&input)),
            )
            .await
    }

    /// ADMIN only.
    async fn update_user_role(
        &self,
        ctx: &Context<'_>,
        id: ID,
        role: UserRole,
    ) -> Result<ManagedUser> {
        let path = format!("/api/admin/users/{}/role", segment(&id));
        rest(ctx)?
            .typed(
                Service::Admin,
                Method::PUT,
                &path,
                &[],
                Some(&json!({ "role": rest_value(&role) })),
            )
            .await
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
        match value {
            MaybeUndefined::Value(v) => {
                b.insert("value".into(), v.0);
            }
            MaybeUndefined::Null => {
                b.insert("value".into(), Value::Null);
            }
            MaybeUndefined::Undefined => {}
        }
        match description {
            MaybeUndefined::Value(d) => {
                b.insert("description".into(), Value::String(d));
            }
            MaybeUndefined::Null => {
                b.insert("description".into(), Value::Null);
            }
            MaybeUndefined::Undefined => {}
        }
        rest(ctx)?
            .typed(
                Service::Admin,
                Method::PUT,
                &path,
                &[],
                Some(&Value::Object(b)),
            )
            .await
    }
}

fn decode(r: &Rest, data: Value) -> Result<Payment> {
    serde_json::from_value(data).map_err(|_| {
        RestError {
            status: 502,
            code: "BAD_GATEWAY".into(),
            message: "The payments service gave an unexpected answer".into(),
            details: None,
            request_id: r.caller.request_id.clone(),
        }
        .extend()
    })
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
