//! The payment reads: `GET /api/payments`, recipients, reports and `GET /api/payments/{id}`
//! (api.md §5.4–§5.7).

use axum::extract::{Path, RawQuery, State};
use chrono::{DateTime, Duration, Utc};
use payplane_authn::CurrentUser;
use payplane_events::{auth::Role, time};
use payplane_kit::{
    ApiError, Data,
    query::{DateBound, QueryParams},
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{money_param, parse_id};
use crate::{
    access,
    app::AppState,
    cache::{Kind, Scope},
    detail, digest,
    domain::{
        LIST_LIMIT_MAX, MAX_PAGE, ORDERS, RECIPIENT_SEARCH, RECIPIENTS_LIMIT_MAX, SORT_KEYS,
        STATUSES, TYPES,
    },
    error, reports,
    store::{
        StoreError,
        payments::{self, ListFilter},
    },
    views,
};

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
    let v = detail::load(&s, id)
        .await?
        .ok_or_else(error::payment_not_found)?;
    if !access::can_see(&user, uuid_of(&v, "senderId"), uuid_of(&v, "recipientId")) {
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
        party: (!access::is_admin(&user)).then_some(user.0.sub),
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
    let digest = digest::sha256_hex(format!("{filter:?}").as_bytes());
    let key = s
        .cache
        .key(Kind::List, &scope, "list", &format!("{owner}:{digest}"))
        .await;
    if let Some(v) = s.cache.get(Kind::List, &key).await {
        return Ok(Data(v));
    }
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
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
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
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
    let party = (!access::is_admin(&user)).then_some(user.0.sub);
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
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let rows = payments::aggregate(&mut conn, party, Some(start), Some(end_exclusive)).await?;
    let v = report_json(&reports::totals(&rows), start, end);
    s.cache.put(&key, &v, 300).await;
    Ok(Data(v))
}

/// The report's JSON (api.md §5.6).
fn report_json(t: &reports::Totals, start: DateTime<Utc>, end: DateTime<Utc>) -> Value {
    let by_currency: Map<String, Value> = t
        .by_currency
        .iter()
        .map(|(c, (n, a))| (c.clone(), json!({"count": n, "amount": views::money(*a)})))
        .collect();
    // `totalAmount` is a JSON number for client compatibility (api.md §5.6); it is built from
    // the exact decimal text, not from a float sum.
    let total_amount: Value =
        serde_json::from_str(&t.amount.normalize().to_string()).unwrap_or(Value::Null);
    json!({
        "totalPayments": t.count,
        "totalAmount": total_amount,
        "byStatus": t.by_status,
        "byType": t.by_type,
        "byCurrency": by_currency,
        "period": { "start": time::format(&start), "end": time::format(&end) },
    })
}
