//! User management (api.md §6.3–§6.9): reads from the read model; writes through auth's
//! internal API, then auth's answer and the audit entry are applied in one local transaction
//! so the admin sees the result at once (the later event for the same change is not newer).

use axum::{
    extract::{Path, RawQuery, State},
    response::IntoResponse,
};
use http::StatusCode;
use payplane_kit::{
    ApiError, Created, Data, context::RequestContext, json::JsonObject, query::QueryParams,
    signup::Signup, validate::Fields,
};
use serde_json::{Map, Value, json};
use sqlx::Acquire;
use uuid::Uuid;

use super::Admin;
use crate::{
    app::AppState,
    audit,
    auth_client::Change,
    domain::{NAME, ORDERS, REASON, ROLES, USER_SEARCH, USER_SORT_KEYS},
    store::{
        StoreError,
        audit::NewEntry,
        users::{self, ListFilter, UserRow, UserState},
    },
};

pub fn user_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "USER_NOT_FOUND", "User not found")
}

fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| user_not_found())
}

pub async fn list(
    _admin: Admin,
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Data<Value>, ApiError> {
    let mut q = QueryParams::parse(raw.as_deref());
    let page = q.pagination(10, crate::domain::LIST_LIMIT_MAX);
    let sort = match q.one_of("sort", &USER_SORT_KEYS) {
        Some("email") => "lower(email)",
        Some("name") => "lower(name)",
        Some("role") => "role",
        _ => "created_at",
    };
    let descending = q.one_of("order", &ORDERS) != Some("asc");
    let role = q.one_of("role", &ROLES);
    let search = q.text("search", USER_SEARCH.min, USER_SEARCH.max);
    let is_active = q.boolean("isActive");
    q.finish()?;
    let filter = ListFilter {
        role,
        is_active,
        search,
        sort,
        descending,
        limit: page.limit,
        offset: page.offset(),
    };
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let (rows, total) = users::list(&mut conn, &filter).await?;
    Ok(Data(json!({
        "users": rows.iter().map(UserRow::view).collect::<Vec<_>>(),
        "pagination": page.describe(total),
    })))
}

pub async fn show(
    _admin: Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Data<Value>, ApiError> {
    let id = user_id(&id)?;
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let row = users::live(&mut conn, id)
        .await?
        .ok_or_else(user_not_found)?;
    Ok(Data(row.view()))
}

/// Applies auth's answer to the read model and writes the audit entry, in one transaction;
/// returns the ManagedUser.
async fn apply(
    s: &AppState,
    ctx: &RequestContext,
    user: &UserState,
    entry: Option<NewEntry>,
) -> Result<Value, ApiError> {
    let mut tx = s.db.begin().await.map_err(StoreError::at("begin"))?;
    {
        // A stale row holding the same email (its deletion event not yet here) must not undo
        // a change auth already made; the events will settle the read model.
        let mut sp = tx.begin().await.map_err(StoreError::at("savepoint"))?;
        match users::upsert_if_newer(&mut sp, user).await {
            Ok(_) => sp
                .commit()
                .await
                .map_err(StoreError::at("release savepoint"))?,
            Err(e) => {
                tracing::warn!(error = %e, user = %user.id, "read model not updated from auth's answer");
                sp.rollback()
                    .await
                    .map_err(StoreError::at("rollback savepoint"))?;
            }
        }
    }
    if let Some(entry) = &entry {
        audit::record(&mut tx, &audit::request_events(ctx), entry).await?;
    }
    let row = users::live(&mut tx, user.id).await?;
    tx.commit().await.map_err(StoreError::at("commit"))?;
    Ok(row.map_or_else(
        || {
            UserRow {
                state: user.clone(),
                last_login_at: None,
                deleted_at: None,
            }
            .view()
        },
        |r| r.view(),
    ))
}

fn user_entry(
    ctx: &RequestContext,
    admin: &Admin,
    action: &'static str,
    id: Uuid,
    details: Value,
) -> NewEntry {
    NewEntry {
        resource_type: Some("user"),
        resource_id: Some(id.to_string()),
        details: Some(details),
        ..audit::from_request(ctx, admin.id, action)
    }
}

pub async fn create(
    admin: Admin,
    State(s): State<AppState>,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Created<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let new = Signup::read(&mut f);
    let role = f.one_of("role", true, &ROLES);
    f.finish()?;
    let (email, password, name) = (new.email, new.password, new.name);
    let request = json!({"email": email, "password": password, "name": name, "role": role});
    let user = s.auth.create(&ctx, admin.id, &request).await?;
    let entry = user_entry(
        &ctx,
        &admin,
        "USER_CREATED",
        user.id,
        json!({"email": user.email, "role": user.role}),
    );
    Ok(Created(apply(&s, &ctx, &user, Some(entry)).await?))
}

pub async fn update(
    admin: Admin,
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let name = f.text("name", false, NAME);
    let email = f.email("email", false);
    if !f.present("name") && !f.present("email") {
        f.push("body", "at least one of name, email is required");
    }
    f.finish()?;
    let id = user_id(&id)?;
    let before = s.auth.get(&ctx, admin.id, id).await?;
    let mut request = Map::new();
    if let Some(name) = name {
        request.insert("name".into(), json!(name));
    }
    if let Some(email) = email {
        request.insert("email".into(), json!(email));
    }
    let after = s
        .auth
        .change(
            &ctx,
            admin.id,
            (id, Change::Profile),
            &Value::Object(request),
        )
        .await?;
    let mut fields = Vec::new();
    let mut previous = Map::new();
    if before.name != after.name {
        fields.push("name");
        previous.insert("name".into(), json!(before.name));
    }
    if before.email != after.email {
        fields.push("email");
        previous.insert("email".into(), json!(before.email));
    }
    let entry = (!fields.is_empty()).then(|| {
        user_entry(
            &ctx,
            &admin,
            "USER_UPDATED",
            id,
            json!({"updatedFields": fields, "previous": previous}),
        )
    });
    Ok(Data(apply(&s, &ctx, &after, entry).await?))
}

pub async fn set_role(
    admin: Admin,
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let role = f.one_of("role", true, &ROLES);
    f.finish()?;
    let id = user_id(&id)?;
    let before = s.auth.get(&ctx, admin.id, id).await?;
    let after = s
        .auth
        .change(&ctx, admin.id, (id, Change::Role), &json!({ "role": role }))
        .await?;
    let entry = (before.role != after.role).then(|| {
        user_entry(
            &ctx,
            &admin,
            "USER_ROLE_CHANGED",
            id,
            json!({"previousRole": before.role, "newRole": after.role}),
        )
    });
    Ok(Data(apply(&s, &ctx, &after, entry).await?))
}

pub async fn set_status(
    admin: Admin,
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let active = f.boolean("isActive", true);
    let reason = f.text_or_absent("reason", REASON);
    f.finish()?;
    let id = user_id(&id)?;
    let before = s.auth.get(&ctx, admin.id, id).await?;
    let mut request = json!({ "isActive": active });
    if let (Some(r), Some(obj)) = (&reason, request.as_object_mut()) {
        obj.insert("reason".into(), json!(r));
    }
    let after = s
        .auth
        .change(&ctx, admin.id, (id, Change::Status), &request)
        .await?;
    let entry = (before.is_active != after.is_active).then(|| {
        user_entry(
            &ctx,
            &admin,
            "USER_STATUS_CHANGED",
            id,
            json!({"isActive": after.is_active, "previousIsActive": before.is_active, "reason": reason}),
        )
    });
    Ok(Data(apply(&s, &ctx, &after, entry).await?))
}

pub async fn remove(
    admin: Admin,
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = user_id(&id)?;
    let before = s.auth.get(&ctx, admin.id, id).await?;
    s.auth.delete(&ctx, admin.id, id).await?;
    let mut tx = s.db.begin().await.map_err(StoreError::at("begin"))?;
    users::mark_deleted(
        &mut tx,
        id,
        &before.email,
        &before.name,
        &before.role,
        payplane_events::time::now(),
    )
    .await?;
    let entry = user_entry(
        &ctx,
        &admin,
        "USER_DELETED",
        id,
        json!({"deletedUserEmail": before.email, "role": before.role}),
    );
    audit::record(&mut tx, &audit::request_events(&ctx), &entry).await?;
    tx.commit().await.map_err(StoreError::at("commit"))?;
    Ok(StatusCode::NO_CONTENT)
}
