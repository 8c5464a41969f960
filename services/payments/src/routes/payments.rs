//! `GET|POST /api/payments`, recipients, reports, `GET|PUT /api/payments/{id}` (api.md §5.4–§5.9).

use std::collections::BTreeMap;

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, Utc};
use http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use payplane_authn::CurrentUser;
use payplane_bus::outbox::{self, EventContext};
use payplane_events::{
    ActorType,
    auth::Role,
    payments::{PaymentCreated, PaymentUpdated},
    time,
};
use payplane_kit::{
    ApiError, Data,
    context::RequestContext,
    json::JsonObjectText,
    query::{DateBound, QueryParams, parse_date},
    storable,
    validate::Fields,
};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{money_param, money_value};
use crate::{
    app::AppState,
    cache::{Cache, Kind, Scope},
    directory::{DirectoryError, Lookup},
    domain::{
        DESCRIPTION, IDEMPOTENCY_KEY_MAX, LIST_LIMIT_MAX, MAX_PAGE, ORDERS, RECIPIENT_SEARCH,
        RECIPIENTS_LIMIT_MAX, SORT_KEYS, STATUSES, TYPES,
        money::{Amount, Currency},
    },
    error,
    store::{
        Ctx, idempotency,
        idempotency::{Claim, Owner},
        payments::{self, ListFilter, NewPayment, NewTx, PaymentRow, TxRow},
        users::DirUser,
    },
    views,
};

pub(crate) fn is_admin(u: &CurrentUser) -> bool {
    u.0.role == Role::Admin
}

pub(crate) fn can_see(u: &CurrentUser, sender: Uuid, recipient: Uuid) -> bool {
    is_admin(u) || u.0.sub == sender || u.0.sub == recipient
}

pub(crate) fn event_context(ctx: &RequestContext) -> EventContext {
    EventContext::for_request("payments", ctx)
}

pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| error::payment_not_found())
}

fn begin_err(source: sqlx::Error) -> crate::store::StoreError {
    crate::store::StoreError {
        op: "begin",
        source,
    }
}

fn directory_err(e: DirectoryError) -> ApiError {
    match e {
        DirectoryError::AuthUnavailable(_) | DirectoryError::AuthStatus(_) => {
            tracing::warn!(error = %e, "auth lookup failed");
            ApiError::unavailable("Auth service is unavailable")
        }
        other => ApiError::internal(&other),
    }
}

/// Reads a payment with its transactions through the versioned cache.
pub(crate) async fn load_detail(s: &AppState, id: Uuid) -> Result<Option<Value>, ApiError> {
    let key = s
        .cache
        .key(
            Kind::Detail,
            &Scope::Payment(id),
            "payment",
            &id.to_string(),
        )
        .await;
    if let Some(v) = s.cache.get(Kind::Detail, &key).await {
        return Ok(Some(v));
    }
    let mut conn = s.db.acquire().await.map_err(begin_err)?;
    let Some(p) = payments::get(&mut conn, id).await? else {
        return Ok(None);
    };
    let txs = payments::transactions(&mut conn, id).await?;
    let v = views::payment_detail(&p, &txs);
    s.cache.put(&key, &v, 60).await;
    Ok(Some(v))
}

fn uuid_of(v: &Value, field: &str) -> Uuid {
    v[field]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_default()
}

pub async fn show(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Data<Value>, ApiError> {
    let id = parse_id(&id)?;
    let v = load_detail(&s, id)
        .await?
        .ok_or_else(error::payment_not_found)?;
    if !can_see(&user, uuid_of(&v, "senderId"), uuid_of(&v, "recipientId")) {
        return Err(error::payment_not_found());
    }
    Ok(Data(v))
}

pub async fn list(
    State(s): State<AppState>,
    user: CurrentUser,
    RawQuery(raw): RawQuery,
) -> Result<Data<Value>, ApiError> {
    let mut p = QueryParams::parse(raw.as_deref());
    let page = p.int("page", 1..=MAX_PAGE, 1);
    let limit = p.int("limit", 1..=LIST_LIMIT_MAX, 10);
    let sort = p.one_of("sort", &SORT_KEYS).unwrap_or("createdAt");
    let order = p.one_of("order", &ORDERS).unwrap_or("desc");
    let status = p.one_of("status", &STATUSES);
    let payment_type = p.one_of("type", &TYPES);
    let (from, to) = p.range(&["startDate", "fromDate"], &["endDate", "toDate"]);
    let min = money_param(&mut p, "minAmount");
    let max = money_param(&mut p, "maxAmount");
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        p.push("minAmount", "must not be greater than maxAmount");
    }
    p.finish()?;
    let filter = ListFilter {
        party: (!is_admin(&user)).then_some(user.0.sub),
        status,
        payment_type,
        from,
        to,
        end_exclusive: true,
        min_amount: min,
        max_amount: max,
        sort: match sort {
            "amount" => "amount",
            "status" => "status",
            _ => "createdAt",
        },
        descending: order == "desc",
        limit,
        offset: (page - 1).saturating_mul(limit),
    };
    let scope = filter.party.map_or(Scope::All, Scope::User);
    let owner = filter
        .party
        .map_or_else(|| "all".to_owned(), |u| u.to_string());
    let digest = sha256_hex(format!("{filter:?}").as_bytes());
    let key = s
        .cache
        .key(Kind::List, &scope, "list", &format!("{owner}:{digest}"))
        .await;
    if let Some(v) = s.cache.get(Kind::List, &key).await {
        return Ok(Data(v));
    }
    let mut conn = s.db.acquire().await.map_err(begin_err)?;
    let (rows, total) = payments::list(&mut conn, &filter).await?;
    let total_pages = if total == 0 {
        0
    } else {
        (total + limit - 1) / limit
    };
    let v = json!({
        "payments": rows.iter().map(views::payment).collect::<Vec<_>>(),
        "pagination": { "page": page, "limit": limit, "total": total, "totalPages": total_pages },
    });
    s.cache.put(&key, &v, 60).await;
    Ok(Data(v))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    views::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

pub async fn recipients(
    State(s): State<AppState>,
    user: CurrentUser,
    RawQuery(raw): RawQuery,
) -> Result<Data<Value>, ApiError> {
    let mut p = QueryParams::parse(raw.as_deref());
    let limit = p.int("limit", 1..=RECIPIENTS_LIMIT_MAX, 100);
    let search = p.get("search").map(str::trim).map(str::to_owned);
    if let Some(sv) = &search {
        let n = sv.chars().count();
        if !(RECIPIENT_SEARCH.min..=RECIPIENT_SEARCH.max).contains(&n) {
            p.push("search", "must be 1 to 100 characters");
        }
    }
    p.finish()?;
    let mut conn = s.db.acquire().await.map_err(begin_err)?;
    let rows =
        crate::store::users::recipients(&mut conn, user.0.sub, search.as_deref(), limit).await?;
    Ok(Data(Value::Array(
        rows.iter()
            .map(|u| json!({"id": u.id, "email": u.email, "name": u.name}))
            .collect(),
    )))
}

pub async fn reports(
    State(s): State<AppState>,
    user: CurrentUser,
    RawQuery(raw): RawQuery,
) -> Result<Data<Value>, ApiError> {
    user.require(&[Role::Vendor, Role::Admin])?;
    let mut p = QueryParams::parse(raw.as_deref());
    let from = p.date(&["startDate", "fromDate"], false);
    let to = p.date(&["endDate", "toDate"], true);
    let end = to.map_or_else(time::now, |t| t.at);
    let end_exclusive = to.map_or(end + Duration::milliseconds(1), DateBound::exclusive_end);
    let start = from.map_or_else(|| end - Duration::days(30), |f| f.at);
    if start > end {
        p.push("startDate", "must not be after endDate");
    }
    p.finish()?;
    let party = (!is_admin(&user)).then_some(user.0.sub);
    let scope = party.map_or(Scope::All, Scope::User);
    let owner = party.map_or_else(|| "all".to_owned(), |u| u.to_string());
    let key = s
        .cache
        .key(
            Kind::Report,
            &scope,
            "report",
            &format!(
                "{owner}:{}:{}",
                start.timestamp_millis(),
                end_exclusive.timestamp_millis()
            ),
        )
        .await;
    if let Some(v) = s.cache.get(Kind::Report, &key).await {
        return Ok(Data(v));
    }
    let mut conn = s.db.acquire().await.map_err(begin_err)?;
    let rows = payments::aggregate(&mut conn, party, Some(start), Some(end_exclusive)).await?;
    let mut by_status: BTreeMap<&str, i64> = STATUSES.iter().map(|s| (*s, 0)).collect();
    let mut by_type: BTreeMap<&str, i64> = TYPES.iter().map(|t| (*t, 0)).collect();
    let mut by_currency: BTreeMap<String, (i64, Decimal)> = BTreeMap::new();
    let (mut total, mut total_amount) = (0i64, Decimal::ZERO);
    for r in &rows {
        total += r.count;
        total_amount += r.amount;
        if let Some(c) = by_status.get_mut(r.status.as_str()) {
            *c += r.count;
        }
        if let Some(c) = by_type.get_mut(r.payment_type.as_str()) {
            *c += r.count;
        }
        let e = by_currency.entry(r.currency.clone()).or_default();
        e.0 += r.count;
        e.1 += r.amount;
    }
    let by_currency: Map<String, Value> = by_currency
        .into_iter()
        .map(|(c, (n, a))| (c, json!({"count": n, "amount": views::money(a)})))
        .collect();
    // `totalAmount` is a JSON number for client compatibility (api.md §5.6); it is built from
    // the exact decimal text, not from a float sum.
    let total_amount: Value =
        serde_json::from_str(&total_amount.normalize().to_string()).unwrap_or(Value::Null);
    let v = json!({
        "totalPayments": total,
        "totalAmount": total_amount,
        "byStatus": by_status,
        "byType": by_type,
        "byCurrency": by_currency,
        "period": { "start": time::format(&start), "end": time::format(&end) },
    });
    s.cache.put(&key, &v, 300).await;
    Ok(Data(v))
}

/// A validated create or edit body.
#[derive(Debug, Default)]
#[expect(
    clippy::option_option,
    reason = "edits distinguish absent, null and a value"
)]
struct Input {
    payment_type: Option<&'static str>,
    amount: Option<Amount>,
    currency: Option<Currency>,
    description: Option<String>,
    recipient: Option<Lookup>,
    both_recipients: bool,
    /// Present in the body (`Some(None)` = `null`).
    metadata: Option<Option<Value>>,
    scheduled_for: Option<Option<DateTime<Utc>>>,
}

/// The members an edit may change; a body must name at least one (api.md §5.9).
pub const EDIT_FIELDS: [&str; 8] = [
    "amount",
    "currency",
    "description",
    "recipientId",
    "recipientEmail",
    "metadata",
    "type",
    "scheduledFor",
];

/// `amount_text`: the `amount` member as written (for the no-exponent rule).
fn read_input(
    body: &Map<String, Value>,
    amount_text: Option<&str>,
    create: bool,
    f: &mut Fields<'_>,
) -> Input {
    let mut input = Input {
        payment_type: f.one_of("type", create, &TYPES),
        ..Input::default()
    };
    match f.get("amount") {
        None if create => f.push("amount", "is required"),
        None => {}
        Some(v) => match money_value(v, amount_text) {
            Ok(a) => input.amount = Some(a),
            Err(msg) => f.push("amount", msg),
        },
    }
    match f.get("currency") {
        None => {}
        Some(Value::String(c)) => match Currency::parse(c) {
            Ok(c) => input.currency = Some(c),
            Err(e) => f.push("currency", e.to_string()),
        },
        Some(_) => f.push("currency", "must be a string"),
    }
    input.description = f.text("description", create, DESCRIPTION);
    let rid = f.get("recipientId").map(|v| match v {
        Value::String(s) => Uuid::parse_str(s.trim()).map_err(|_| "must be a UUID"),
        _ => Err("must be a UUID string"),
    });
    let remail = f
        .present("recipientEmail")
        .then(|| f.email("recipientEmail", false));
    match (rid, remail) {
        (Some(_), Some(_)) => input.both_recipients = true,
        (Some(Ok(id)), None) => input.recipient = Some(Lookup::Id(id)),
        (Some(Err(msg)), None) => f.push("recipientId", msg),
        (None, Some(Some(email))) => input.recipient = Some(Lookup::Email(email)),
        (None, Some(None)) => {}
        (None, None) => {
            if create {
                f.push("recipientId", "is required (or recipientEmail)");
            }
        }
    }
    if let Some(v) = body.get("metadata") {
        match v {
            Value::Null => input.metadata = Some(None),
            Value::Object(_) => match storable::check(v, crate::domain::METADATA_LIMITS) {
                Ok(()) => input.metadata = Some(Some(v.clone())),
                Err(msg) => f.push("metadata", msg),
            },
            _ => f.push("metadata", "must be an object or null"),
        }
    }
    if let Some(v) = body.get("scheduledFor") {
        match v {
            Value::Null => input.scheduled_for = Some(None),
            Value::String(s) => match parse_date(s, false) {
                Some(DateBound { at, .. }) => {
                    let now = Utc::now();
                    if at <= now {
                        f.push("scheduledFor", "must be in the future");
                    } else if at > now + Duration::days(365) {
                        f.push("scheduledFor", "must be at most 365 days ahead");
                    } else {
                        input.scheduled_for = Some(Some(at));
                    }
                }
                None => f.push("scheduledFor", "must be an RFC 3339 timestamp"),
            },
            _ => f.push("scheduledFor", "must be a timestamp string"),
        }
    }
    input
}

/// The create rules for the `type`/`scheduledFor` combination.
fn check_schedule(f: &mut Fields<'_>, ty: &str, scheduled: Option<DateTime<Utc>>) {
    match (ty, scheduled) {
        ("scheduled", None) => f.push("scheduledFor", "is required for scheduled payments"),
        ("instant", Some(_)) => f.push("scheduledFor", "is not allowed for instant payments"),
        _ => {}
    }
}

fn idempotency_key(headers: &HeaderMap, f: &mut Fields<'_>) -> Option<String> {
    let raw = headers.get("idempotency-key")?;
    let ok = raw.to_str().ok().filter(|k| {
        (1..=IDEMPOTENCY_KEY_MAX).contains(&k.len())
            && k.bytes().all(|b| (0x21..=0x7e).contains(&b))
    });
    if ok.is_none() {
        f.push(
            "idempotency-key",
            "must be 1 to 255 printable ASCII characters",
        );
    }
    ok.map(str::to_owned)
}

/// The canonical text of a JSON value: keys sorted at every level, no whitespace.
pub(crate) fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn fingerprint(method: &str, path: &str, body: &Map<String, Value>) -> Vec<u8> {
    let mut text = format!("{method}\n{path}\n");
    canonical(&Value::Object(body.clone()), &mut text);
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

/// Answers with the payment already created under `owner`'s generation of `key`, and records
/// that answer for the key.
async fn replay_existing(
    s: &AppState,
    sender: Uuid,
    key: &str,
    owner: &Owner,
) -> Result<Response, ApiError> {
    let mut conn = s.db.acquire().await.map_err(begin_err)?;
    let id = payments::id_for_claim(&mut conn, sender, key, owner.since)
        .await?
        .ok_or_else(error::idempotency_in_progress)?;
    let detail = load_detail(s, id)
        .await?
        .ok_or_else(error::idempotency_in_progress)?;
    let bytes = serde_json::to_vec(&json!({ "success": true, "data": detail })).unwrap_or_default();
    if !idempotency::finish(&mut conn, sender, key, owner, 201, &bytes, Some(id)).await? {
        return Err(error::idempotency_in_progress());
    }
    Ok(json_response(StatusCode::CREATED, bytes, true))
}

fn json_response(status: StatusCode, body: Vec<u8>, replayed: bool) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if replayed {
        res.headers_mut().insert(
            "idempotent-replayed",
            http::HeaderValue::from_static("true"),
        );
    }
    res
}

async fn error_bytes(e: ApiError) -> (StatusCode, Vec<u8>) {
    let res = e.into_response();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (status, bytes)
}

/// Resolves the recipient and the caller's own directory row (step 3–4 of §5.8).
async fn resolve_parties(
    s: &AppState,
    user: &CurrentUser,
    recipient: &Lookup,
) -> Result<(DirUser, DirUser), ApiError> {
    // Common case: both already in the directory, read in one round trip.
    if let Lookup::Id(rid) = recipient {
        let mut conn = s.db.acquire().await.map_err(begin_err)?;
        let rows = crate::store::users::by_ids(&mut conn, &[*rid, user.0.sub]).await?;
        let find = |id: Uuid| rows.iter().find(|u| u.id == id && u.deleted_at.is_none());
        if let (Some(r), Some(me)) = (find(*rid), find(user.0.sub)) {
            return check_parties(me.clone(), r.clone());
        }
    }
    let recipient = s
        .directory
        .resolve(&s.db, recipient)
        .await
        .map_err(directory_err)?
        .ok_or_else(error::recipient_not_found)?;
    let sender = s
        .directory
        .resolve(&s.db, &Lookup::Id(user.0.sub))
        .await
        .map_err(directory_err)?
        .ok_or_else(|| ApiError::forbidden("Account no longer exists"))?;
    check_parties(sender, recipient)
}

fn check_parties(sender: DirUser, recipient: DirUser) -> Result<(DirUser, DirUser), ApiError> {
    if recipient.id == sender.id {
        return Err(error::invalid_recipient("You cannot pay yourself"));
    }
    if !recipient.is_active {
        return Err(error::invalid_recipient("Recipient account is deactivated"));
    }
    Ok((sender, recipient))
}

pub async fn create(
    State(s): State<AppState>,
    user: CurrentUser,
    ctx: RequestContext,
    headers: HeaderMap,
    json: JsonObjectText,
) -> Result<Response, ApiError> {
    let body = &json.body;
    let mut f = Fields::new(body);
    let input = read_input(body, json.member_text("amount").as_deref(), true, &mut f);
    if let Some(ty) = input.payment_type
        && !f.has_error("scheduledFor")
    {
        check_schedule(&mut f, ty, input.scheduled_for.flatten());
    }
    let key = idempotency_key(&headers, &mut f);
    f.finish()?;
    let path = "/api/payments";
    let mut owner = None;
    if let Some(key) = &key {
        let fp = fingerprint("POST", path, body);
        match idempotency::claim(&s.db, user.0.sub, key, "POST", path, &fp).await? {
            Claim::Owned(o) => owner = Some(o),
            Claim::Replay { status, body } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                return Ok(json_response(status, body, true));
            }
            Claim::Reused => return Err(error::idempotency_key_reused()),
            Claim::InProgress => return Err(error::idempotency_in_progress()),
        }
    }
    let claim = key.as_deref().zip(owner.as_ref());
    let result = create_owned(&s, &user, &ctx, input, claim).await;
    match (result, claim) {
        (Ok(res), _) => Ok(res),
        (Err(e), Some((key, owner))) if e.status.is_client_error() => {
            // Business errors after validation are part of the key's record (§5.8) — unless
            // the claim was taken over meanwhile: then the new owner's answer is the record.
            let (status, bytes) = error_bytes(e).await;
            let mut conn = s.db.acquire().await.map_err(begin_err)?;
            if !idempotency::finish(
                &mut conn,
                user.0.sub,
                key,
                owner,
                status.as_u16(),
                &bytes,
                None,
            )
            .await?
            {
                return Err(error::idempotency_in_progress());
            }
            Ok(json_response(status, bytes, false))
        }
        (Err(e), Some((key, owner))) => {
            if let Ok(mut conn) = s.db.acquire().await {
                let _ = idempotency::release(&mut conn, user.0.sub, key, owner).await;
            }
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

async fn create_owned(
    s: &AppState,
    user: &CurrentUser,
    ctx: &RequestContext,
    input: Input,
    claim: Option<(&str, &Owner)>,
) -> Result<Response, ApiError> {
    if input.both_recipients {
        return Err(error::invalid_recipient(
            "Give either recipientId or recipientEmail, not both",
        ));
    }
    let lookup = input
        .recipient
        .clone()
        .ok_or_else(error::recipient_not_found)?;
    let (sender, recipient) = resolve_parties(s, user, &lookup).await?;
    let now = time::now();
    let currency = input.currency.map_or("USD", Currency::code);
    let amount = input.amount.map(Amount::value).unwrap_or_default();
    let ty = input.payment_type.unwrap_or("instant");
    let description = input.description.unwrap_or_default();
    let metadata = input.metadata.flatten();
    let scheduled_for = input.scheduled_for.flatten();
    let id = Uuid::new_v4();
    let mut tx = s.db.begin().await.map_err(begin_err)?;
    let inserted = payments::insert(
        &mut tx,
        &NewPayment {
            id,
            sender_id: sender.id,
            recipient_id: recipient.id,
            amount,
            currency,
            payment_type: ty,
            description: &description,
            metadata: metadata.as_ref(),
            scheduled_for,
            idempotency_key: claim.map(|(k, _)| k),
            idempotency_since: claim.map(|(_, o)| o.since),
            status: "pending",
            psp_transaction_id: None,
            psp_status: None,
            completed_at: None,
            now,
        },
    )
    .await;
    if let (Err(e), Some((key, owner))) = (&inserted, claim)
        && e.source.as_database_error().and_then(|d| d.constraint())
            == Some("payments_idempotency_once")
    {
        // This generation of the key already has its payment (a claim taken over from a
        // request that did commit): the key's answer is that payment, never a second one.
        drop(tx);
        return replay_existing(s, user.0.sub, key, owner).await;
    }
    inserted?;
    let txrow = payments::insert_tx(
        &mut tx,
        &NewTx {
            payment_id: id,
            status: "pending",
            previous_status: None,
            status_message: "Payment created",
            psp_transaction_id: None,
            actor_id: Some(user.0.sub),
            actor_type: "user",
            metadata: None,
            at: now,
        },
    )
    .await?;
    let row = PaymentRow {
        id,
        sender_id: sender.id,
        recipient_id: recipient.id,
        amount: {
            let mut a = amount;
            a.rescale(2);
            a
        },
        currency: currency.to_owned(),
        status: "pending".into(),
        payment_type: ty.to_owned(),
        description,
        metadata,
        psp_transaction_id: None,
        psp_status: None,
        failure_reason: None,
        scheduled_for,
        completed_at: None,
        created_at: now,
        updated_at: now,
        sender_email: sender.email,
        sender_name: sender.name,
        recipient_email: recipient.email,
        recipient_name: recipient.name,
    };
    outbox::enqueue(
        &mut tx,
        &event_context(ctx),
        &id.to_string(),
        &PaymentCreated {
            payment: views::snapshot(&row),
            actor_id: Some(user.0.sub),
            actor_type: ActorType::User,
        },
    )
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let body = json!({ "success": true, "data": views::payment_detail(&row, &[txrow]) });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    if let Some((key, owner)) = claim
        && !idempotency::finish(&mut tx, user.0.sub, key, owner, 201, &bytes, Some(id)).await?
    {
        // Taken over while we worked: dropping `tx` rolls the payment back.
        return Err(error::idempotency_in_progress());
    }
    tx.commit().await.ctx("commit payment create")?;
    s.cache
        .bump(&Cache::payment_scopes(id, sender.id, recipient.id))
        .await;
    Ok(json_response(StatusCode::CREATED, bytes, false))
}

/// Reads the payment for a change by `user`: 404 when invisible.
pub(crate) async fn visible(
    s: &AppState,
    user: &CurrentUser,
    id: Uuid,
) -> Result<PaymentRow, ApiError> {
    let mut conn = s.db.acquire().await.map_err(begin_err)?;
    payments::get(&mut conn, id)
        .await?
        .filter(|p| can_see(user, p.sender_id, p.recipient_id))
        .ok_or_else(error::payment_not_found)
}

pub(crate) async fn detail_of(
    conn: &mut sqlx::PgConnection,
    p: &PaymentRow,
) -> Result<Value, ApiError> {
    let txs: Vec<TxRow> = payments::transactions(conn, p.id).await?;
    Ok(views::payment_detail(p, &txs))
}

pub async fn update(
    State(s): State<AppState>,
    user: CurrentUser,
    ctx: RequestContext,
    Path(id): Path<String>,
    json: JsonObjectText,
) -> Result<Data<Value>, ApiError> {
    let body = &json.body;
    let mut f = Fields::new(body);
    let input = read_input(body, json.member_text("amount").as_deref(), false, &mut f);
    if !EDIT_FIELDS.iter().any(|k| body.contains_key(*k)) {
        f.push("body", "must contain at least one field to change");
    }
    f.finish()?;
    let id = parse_id(&id)?;
    let current = visible(&s, &user, id).await?;
    if !is_admin(&user) && current.sender_id != user.0.sub {
        return Err(ApiError::forbidden("Only the sender may edit this payment"));
    }
    if current.status != "pending" {
        return Err(error::invalid_status());
    }
    if input.both_recipients {
        return Err(error::invalid_recipient(
            "Give either recipientId or recipientEmail, not both",
        ));
    }
    let new_recipient = match &input.recipient {
        None => None,
        Some(lookup) => {
            let r = s
                .directory
                .resolve(&s.db, lookup)
                .await
                .map_err(directory_err)?
                .ok_or_else(error::recipient_not_found)?;
            if r.id == current.sender_id {
                return Err(error::invalid_recipient(
                    "The sender cannot be the recipient",
                ));
            }
            if !r.is_active {
                return Err(error::invalid_recipient("Recipient account is deactivated"));
            }
            Some(r)
        }
    };
    let mut tx = s.db.begin().await.map_err(begin_err)?;
    let mut p = payments::lock(&mut tx, id)
        .await?
        .ok_or_else(error::payment_not_found)?;
    if p.status != "pending" {
        return Err(error::invalid_status());
    }
    let before = p.clone();
    let mut changed: Vec<&str> = Vec::new();
    let mut previous = Map::new();
    if let Some(a) = input.amount
        && a.value() != p.amount
    {
        previous.insert("amount".into(), json!(views::money(p.amount)));
        p.amount = a.value();
        changed.push("amount");
    }
    if let Some(c) = input.currency
        && c.code() != p.currency
    {
        previous.insert("currency".into(), json!(p.currency));
        c.code().clone_into(&mut p.currency);
        changed.push("currency");
    }
    if let Some(d) = input.description
        && d != p.description
    {
        previous.insert("description".into(), json!(p.description));
        p.description = d;
        changed.push("description");
    }
    if let Some(r) = new_recipient
        && r.id != p.recipient_id
    {
        previous.insert("recipientId".into(), json!(p.recipient_id));
        p.recipient_id = r.id;
        p.recipient_email = r.email;
        p.recipient_name = r.name;
        changed.push("recipientId");
    }
    if let Some(m) = input.metadata
        && m != p.metadata
    {
        p.metadata = m;
        changed.push("metadata");
    }
    let new_type = input.payment_type.unwrap_or(
        TYPES
            .iter()
            .find(|t| **t == p.payment_type)
            .copied()
            .unwrap_or("instant"),
    );
    let new_sched = match input.scheduled_for {
        Some(v) => v,
        None if new_type == "instant" => None,
        None => p.scheduled_for,
    };
    let mut f = Fields::new(body);
    check_schedule(&mut f, new_type, new_sched);
    f.finish()?;
    if new_type != p.payment_type {
        previous.insert("type".into(), json!(p.payment_type));
        p.payment_type = new_type.to_owned();
        changed.push("type");
    }
    if new_sched != p.scheduled_for {
        previous.insert(
            "scheduledFor".into(),
            p.scheduled_for
                .map_or(Value::Null, |t| Value::String(time::format(&t))),
        );
        p.scheduled_for = new_sched;
        changed.push("scheduledFor");
    }
    if changed.is_empty() {
        let v = detail_of(&mut tx, &p).await?;
        tx.commit().await.ctx("commit no-op edit")?;
        return Ok(Data(v));
    }
    let now = time::now();
    p.updated_at = now;
    payments::save(&mut tx, &p).await?;
    let admin = is_admin(&user);
    payments::insert_tx(
        &mut tx,
        &NewTx {
            payment_id: p.id,
            status: "pending",
            previous_status: Some("pending"),
            status_message: "Payment details updated",
            psp_transaction_id: None,
            actor_id: Some(user.0.sub),
            actor_type: if admin { "admin" } else { "user" },
            metadata: Some(json!({ "changedFields": changed })),
            at: now,
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        &event_context(&ctx),
        &p.id.to_string(),
        &PaymentUpdated {
            payment: views::snapshot(&p),
            actor_id: Some(user.0.sub),
            actor_type: if admin {
                ActorType::Admin
            } else {
                ActorType::User
            },
            changed_fields: changed.iter().map(|c| (*c).to_owned()).collect(),
            previous,
        },
    )
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let v = detail_of(&mut tx, &p).await?;
    tx.commit().await.ctx("commit payment edit")?;
    let mut scopes = Cache::payment_scopes(p.id, p.sender_id, p.recipient_id);
    if before.recipient_id != p.recipient_id {
        scopes.push(Scope::User(before.recipient_id));
    }
    s.cache.bump(&scopes).await;
    Ok(Data(v))
}
