//! The audit log (api.md §6.10–§6.11): filtered, newest-first pages and the action list.

use axum::extract::{RawQuery, State};
use payplane_kit::{ApiError, Data, query::QueryParams};
use serde_json::{Value, json};

use super::Admin;
use crate::{
    app::AppState,
    audit::{ACTIONS, RESOURCE_TYPES},
    store::{
        StoreError,
        audit::{self, ListFilter},
    },
};

pub async fn list(
    _admin: Admin,
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Data<Value>, ApiError> {
    let mut q = QueryParams::parse(raw.as_deref());
    let page = q.pagination(20, crate::domain::LIST_LIMIT_MAX);
    let action = q.one_of("action", &ACTIONS);
    let user_id = q.uuid("userId");
    let resource_type = q.one_of("resourceType", &RESOURCE_TYPES);
    let resource_id = q.text(
        "resourceId",
        crate::domain::RESOURCE_ID.min,
        crate::domain::RESOURCE_ID.max,
    );
    let (from, to) = q.range(&["startDate"], &["endDate"]);
    q.finish()?;
    let filter = ListFilter {
        action,
        user_id,
        resource_type,
        resource_id,
        from,
        to,
        limit: page.limit,
        offset: page.offset(),
    };
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let (entries, total) = audit::list(&mut conn, &filter).await?;
    // Nested `data`, kept for client compatibility (api.md §6.10).
    Ok(Data(
        json!({ "data": entries, "pagination": page.describe(total) }),
    ))
}

pub async fn actions(_admin: Admin) -> Data<[&'static str; 18]> {
    Data(ACTIONS)
}
