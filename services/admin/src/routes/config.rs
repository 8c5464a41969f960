//! System config CRUD (api.md §6.12). Every actual change writes, in one transaction, the
//! entry, a `SYSTEM_CONFIG_CHANGED` audit entry and the `admin.config.updated` and
//! `admin.audit.created` events.

use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use http::StatusCode;
use payplane_bus::outbox;
use payplane_events::{
    ActorType,
    admin::{ConfigOperation, ConfigUpdated},
    time,
};
use payplane_kit::{
    ApiError, Created, Data,
    context::RequestContext,
    json::JsonObject,
    validate::{Fields, normalize_text},
};
use serde_json::{Map, Value, json};
use sqlx::{PgConnection, Postgres, Transaction};

use super::Admin;
use crate::{
    app::AppState,
    audit,
    domain::{CONFIG_DESCRIPTION, CONFIG_VALUE_LIMITS, config_key_ok},
    store::{
        StoreError,
        audit::NewEntry,
        config::{self, Entry},
    },
};

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "CONFIG_NOT_FOUND",
        "Config entry not found",
    )
}

/// What a request says about `description`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Description {
    /// Absent (or invalid, already reported): keep the stored one.
    Keep,
    /// JSON null: clear it.
    Clear,
    Set(String),
}

impl Description {
    /// The description to store, given the current one.
    fn resolve(self, current: Option<String>) -> Option<String> {
        match self {
            Description::Keep => current,
            Description::Clear => None,
            Description::Set(text) => Some(text),
        }
    }
}

/// `description`: a string of 0..500 characters (multi-line) or null.
fn description(f: &mut Fields<'_>, body: &Map<String, Value>) -> Description {
    match body.get("description") {
        None => Description::Keep,
        Some(Value::Null) => Description::Clear,
        Some(Value::String(raw)) => match normalize_text(raw, true) {
            Ok(text) if text.chars().count() <= CONFIG_DESCRIPTION.max => Description::Set(text),
            Ok(_) => {
                f.push("description", "must be at most 500 characters");
                Description::Keep
            }
            Err(msg) => {
                f.push("description", msg);
                Description::Keep
            }
        },
        Some(_) => {
            f.push("description", "must be a string or null");
            Description::Keep
        }
    }
}

/// `value`: required, any JSON (including null) within [`CONFIG_VALUE_LIMITS`].
fn value(f: &mut Fields<'_>, body: &Map<String, Value>) -> Option<Value> {
    let Some(v) = body.get("value") else {
        f.push("value", "is required");
        return None;
    };
    if let Err(msg) = payplane_kit::storable::check(v, CONFIG_VALUE_LIMITS) {
        f.push("value", msg);
        return None;
    }
    Some(v.clone())
}

/// Writes the audit entry and both events of one change.
async fn record_change(
    conn: &mut PgConnection,
    ctx: &RequestContext,
    admin: &Admin,
    key: &str,
    operation: ConfigOperation,
    previous: Option<&Entry>,
    current: Option<&Entry>,
) -> Result<(), ApiError> {
    let events = audit::request_events(ctx);
    let op = match operation {
        ConfigOperation::Created => "created",
        ConfigOperation::Updated => "updated",
        ConfigOperation::Deleted => "deleted",
    };
    let event = ConfigUpdated {
        key: key.to_owned(),
        operation,
        value: current.map(|e| e.value.clone()),
        previous_value: previous.map(|e| e.value.clone()),
        description: current.or(previous).and_then(|e| e.description.clone()),
        updated_by: admin.id,
        actor_id: Some(admin.id),
        actor_type: ActorType::Admin,
        updated_at: current.map_or_else(time::now, |e| e.updated_at),
    };
    outbox::enqueue(conn, &events, key, &event)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let entry = NewEntry {
        resource_type: Some("system_config"),
        resource_id: Some(key.to_owned()),
        details: Some(json!({
            "key": key,
            "operation": op,
            "previousValue": previous.map(|e| &e.value),
            "newValue": current.map(|e| &e.value),
        })),
        ..audit::from_request(ctx, admin.id, "SYSTEM_CONFIG_CHANGED")
    };
    audit::record(conn, &events, &entry).await?;
    Ok(())
}

pub async fn list(_admin: Admin, State(s): State<AppState>) -> Result<Data<Value>, ApiError> {
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let entries = config::all(&mut conn).await?;
    Ok(Data(Value::Array(
        entries.iter().map(Entry::view).collect(),
    )))
}

pub async fn show(
    _admin: Admin,
    State(s): State<AppState>,
    Path(key): Path<String>,
) -> Result<Data<Value>, ApiError> {
    if !config_key_ok(&key) {
        return Err(not_found());
    }
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let entry = config::get(&mut conn, &key).await?.ok_or_else(not_found)?;
    Ok(Data(entry.view()))
}

fn new_entry(key: String, value: Value, description: Option<String>, admin: &Admin) -> Entry {
    let now = time::now();
    Entry {
        key,
        value,
        description,
        updated_by: Some(admin.id),
        created_at: now,
        updated_at: now,
    }
}

fn exists() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "CONFIG_EXISTS",
        "Config entry already exists",
    )
}

pub async fn create(
    admin: Admin,
    State(s): State<AppState>,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Created<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let key = match body.get("key") {
        None | Some(Value::Null) => {
            f.push("key", "is required");
            None
        }
        Some(Value::String(k)) if config_key_ok(k) => Some(k.clone()),
        Some(Value::String(_)) => {
            f.push(
                "key",
                "must be 1-128 characters matching ^[a-z0-9]+([._-][a-z0-9]+)*$",
            );
            None
        }
        Some(_) => {
            f.push("key", "must be a string");
            None
        }
    };
    let value = value(&mut f, &body);
    let description = description(&mut f, &body).resolve(None);
    f.finish()?;
    let (Some(key), Some(value)) = (key, value) else {
        return Err(ApiError::field("body", "invalid"));
    };
    let tx = s.db.begin().await.map_err(StoreError::at("begin"))?;
    let entry = new_entry(key, value, description, &admin);
    Ok(Created(insert_new(tx, &ctx, &admin, &entry).await?))
}

/// Inserts `entry` under a key not in use yet (409 `CONFIG_EXISTS` otherwise), records its
/// creation and commits; the entry as answered.
async fn insert_new(
    mut tx: Transaction<'_, Postgres>,
    ctx: &RequestContext,
    admin: &Admin,
    entry: &Entry,
) -> Result<Value, ApiError> {
    let saved = config::insert(&mut tx, entry).await?.ok_or_else(exists)?;
    let created = ConfigOperation::Created;
    record_change(&mut tx, ctx, admin, &entry.key, created, None, Some(&saved)).await?;
    tx.commit().await.map_err(StoreError::at("commit"))?;
    Ok(saved.view())
}

pub async fn put(
    admin: Admin,
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(key): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut f = Fields::new(&body);
    let value = value(&mut f, &body);
    let description = description(&mut f, &body);
    f.finish()?;
    if !config_key_ok(&key) {
        return Err(not_found());
    }
    let Some(value) = value else {
        return Err(ApiError::field("value", "is required"));
    };
    let mut tx = s.db.begin().await.map_err(StoreError::at("begin"))?;
    let Some(previous) = config::lock(&mut tx, &key).await? else {
        let entry = new_entry(key.clone(), value, description.resolve(None), &admin);
        let created = insert_new(tx, &ctx, &admin, &entry).await?;
        return Ok(Created(created).into_response());
    };
    let description = description.resolve(previous.description.clone());
    if previous.value == value && previous.description == description {
        return Ok(Data(previous.view()).into_response());
    }
    let next = Entry {
        value,
        description,
        updated_by: Some(admin.id),
        updated_at: time::now(),
        ..previous.clone()
    };
    let saved = config::update(&mut tx, &next).await?;
    record_change(
        &mut tx,
        &ctx,
        &admin,
        &key,
        ConfigOperation::Updated,
        Some(&previous),
        Some(&saved),
    )
    .await?;
    tx.commit().await.map_err(StoreError::at("commit"))?;
    Ok(Data(saved.view()).into_response())
}

pub async fn remove(
    admin: Admin,
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !config_key_ok(&key) {
        return Err(not_found());
    }
    let mut tx = s.db.begin().await.map_err(StoreError::at("begin"))?;
    let previous = config::lock(&mut tx, &key).await?.ok_or_else(not_found)?;
    config::delete(&mut tx, &key).await?;
    record_change(
        &mut tx,
        &ctx,
        &admin,
        &key,
        ConfigOperation::Deleted,
        Some(&previous),
        None,
    )
    .await?;
    tx.commit().await.map_err(StoreError::at("commit"))?;
    Ok(StatusCode::NO_CONTENT)
}
