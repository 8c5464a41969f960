//! Register, login, refresh and logout (api.md §4.4–§4.7).

use axum::extract::State;
use chrono::{DateTime, Utc};
use payplane_authn::extract::bearer_from_headers;
use payplane_events::{
    auth::{Origin, RevokeReason, Role, UserLogin, UserLogout},
    time,
};
use payplane_kit::{
    ApiError, Created, Data, context::RequestContext, json::JsonObject, signup::Signup,
    validate::Fields,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    account::{self, Actor, Started, event_context},
    app::AppState,
    error,
    lockout::{self, Failure, Gate},
    password,
    routes::{LOGOUT_REFRESH_TOKEN_MAX, REFRESH_TOKEN_MAX, SELF_ROLES, attempt, device_fields},
    store::{
        StoreError,
        sessions::{self, Target},
        throttle, users,
    },
    tokens,
    views::public_user,
};

fn begin_err(e: sqlx::Error) -> ApiError {
    ApiError::internal(&crate::store::StoreError::new("transaction", e))
}

fn auth_result(s: &AppState, user: &users::User, started: &Started) -> Result<Value, ApiError> {
    let access = tokens::access_token(
        &s.keys,
        &s.config.issuer,
        s.config.access_ttl,
        user,
        started.session_id,
    )?;
    Ok(json!({
        "user": public_user(user),
        "accessToken": access,
        "refreshToken": started.refresh_token,
        "expiresIn": payplane_kit::duration::format(s.config.access_ttl),
        "sessionId": started.session_id,
        "deviceId": started.device_id,
    }))
}

/// `POST /api/auth/register`.
pub async fn register(
    State(s): State<AppState>,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Created<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let new = Signup::read(&mut f);
    let role = f.one_of("role", false, &SELF_ROLES);
    let device = device_fields(&mut f, ctx.device_header.as_deref(), false);
    f.finish()?;
    let (email, password, name) = (
        new.email.unwrap_or_default(),
        new.password.unwrap_or_default(),
        new.name.unwrap_or_default(),
    );
    let role = role.and_then(Role::parse).unwrap_or(Role::Customer);

    account::refuse_taken_email(&s.db, &email).await?;
    let hash = s.hasher.hash(&password).await?;
    let now = time::now();
    let ev = event_context(&ctx);
    let mut tx = s.db.begin().await.map_err(begin_err)?;
    let new = users::NewUser::unverified(&email, &hash, &name, role, now);
    let (origin, actor) = (Origin::SelfService, Actor::user(new.id));
    let user = account::create_user(&mut tx, &ev, &new, origin, actor).await?;
    let started =
        account::start_session(&mut tx, &s.config, &ev, &user, &device, &ctx.client, now).await?;
    tx.commit()
        .await
        .map_err(StoreError::at("commit register"))?;
    s.markers.sessions_revoked(&started.ended).await;
    Ok(Created(auth_result(&s, &user, &started)?))
}

fn login_metric(outcome: &'static str) {
    metrics::counter!("auth_logins_total", "outcome" => outcome).increment(1);
}

/// [`attempt::gate_refusal`], counted as a `locked` login.
fn gate_refusal(gate: Gate) -> Option<ApiError> {
    let refusal = attempt::gate_refusal(gate);
    if refusal.is_some() {
        login_metric("locked");
    }
    refusal
}

/// The answer to a wrong password: locked now (with the wait), or counted (with the attempts
/// left when the contract shows them).
fn failed_login(outcome: Failure, now: DateTime<Utc>) -> ApiError {
    match outcome {
        Failure::LockedNow { until } => {
            login_metric("locked");
            error::account_locked(
                lockout::wait_seconds(until, now),
                Some(time::format(&until)),
            )
        }
        Failure::Counted { remaining } => {
            login_metric("invalid_credentials");
            let err = error::unauthorized("INVALID_CREDENTIALS", "Invalid email or password");
            match remaining {
                Some(n) => err.with_details(json!({ "remainingAttempts": n })),
                None => err,
            }
        }
    }
}

/// `POST /api/auth/login` with the throttle of api.md §4.3.
pub async fn login(
    State(s): State<AppState>,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let email = f.email("email", true);
    let password = f.secret("password", true, 1, password::PASSWORD_MAX);
    let device = device_fields(&mut f, ctx.device_header.as_deref(), false);
    f.finish()?;
    let (email, password) = (email.unwrap_or_default(), password.unwrap_or_default());

    // Phase 1, no transaction and no lock: refuse a locked account before spending a hash on
    // it, and read the stored hash. The gate is checked again under the row lock below.
    let key = tokens::email_hash(&email);
    let (user, early) = {
        let mut conn = s.db.acquire().await.map_err(begin_err)?;
        let gate = attempt::peek(&mut conn, &key).await?;
        let user = match gate {
            Gate::Open => users::by_email(&mut conn, &email).await?,
            _ => None,
        };
        (user, gate)
    };
    if let Some(err) = gate_refusal(early) {
        return Err(err);
    }
    // Phase 2: the hash, outside any transaction and bounded by the hasher's slots (503 when
    // the queue wait runs out), so a login flood holds no pooled connection or row lock.
    let verified = s
        .hasher
        .verify_login(user.as_ref().map(|u| u.password_hash.as_str()), &password)
        .await?;
    let valid = verified.valid;
    // Phase 3, under the throttle row lock: parallel attempts for one email are counted exactly,
    // and an attempt whose account was locked while it hashed learns nothing about its password.
    let now = time::now();
    let tx = s.db.begin().await.map_err(begin_err)?;
    let (mut tx, state) = attempt::lock_open(tx, &key, now, gate_refusal).await?;
    let Some(user) = user.filter(|_| valid) else {
        let what = "commit failed login";
        let outcome = attempt::count_failure(tx, &key, state, ctx.client.ip, now, what).await?;
        return Err(failed_login(outcome, now));
    };
    let verified_hash = user.password_hash;
    throttle::clear(&mut tx, &key).await?;
    // A password changed while this attempt hashed makes the verified hash stale.
    let Some(user) = users::lock(&mut tx, user.id)
        .await?
        .filter(|u| u.password_hash == verified_hash)
    else {
        return Err(error::unauthorized(
            "INVALID_CREDENTIALS",
            "Invalid email or password",
        ));
    };
    // An imported bcrypt hash becomes Argon2id with this login (import.md §2): same password,
    // so neither password_changed_at nor the token version moves.
    if let Some(upgrade) = &verified.upgrade {
        users::upgrade_hash(&mut tx, user.id, upgrade).await?;
    }
    if !user.is_active {
        tx.commit()
            .await
            .map_err(StoreError::at("commit disabled login"))?;
        login_metric("disabled");
        return Err(error::account_disabled());
    }
    let ev = event_context(&ctx);
    let started =
        account::start_session(&mut tx, &s.config, &ev, &user, &device, &ctx.client, now).await?;
    let login = UserLogin {
        user_id: user.id,
        email: user.email.clone(),
        role: user.role,
        session_id: started.session_id,
        device_id: started.device_id.clone(),
        device_name: device.device_name.clone(),
        device_type: device.device_type.map(str::to_owned),
        ip_address: ctx.client.ip.map(|ip| ip.to_string()),
        user_agent: ctx.client.user_agent.clone(),
        login_at: now,
    };
    account::publish(&mut tx, &ev, user.id, &login).await?;
    tx.commit().await.map_err(StoreError::at("commit login"))?;
    login_metric("success");
    s.markers.sessions_revoked(&started.ended).await;
    Ok(Data(auth_result(&s, &user, &started)?))
}

/// `POST /api/auth/refresh`: rotation with reuse detection (api.md §4.6).
pub async fn refresh(
    State(s): State<AppState>,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let token = f.secret("refreshToken", true, 1, REFRESH_TOKEN_MAX);
    f.finish()?;
    let hash = tokens::hash_refresh(&token.unwrap_or_default());
    let now = time::now();
    let mut tx = s.db.begin().await.map_err(begin_err)?;
    let Some(row) = sessions::find_refresh(&mut tx, &hash).await? else {
        return Err(error::unauthorized(
            "TOKEN_INVALID",
            "Refresh token is invalid",
        ));
    };
    if row.session_revoked_at.is_some() {
        return Err(error::unauthorized(
            "SESSION_REVOKED",
            "Session has been revoked",
        ));
    }
    if let Some(rotated) = row.rotated_at {
        if now - rotated < chrono::TimeDelta::seconds(10) {
            return Err(error::unauthorized(
                "TOKEN_INVALID",
                "Refresh token was already used",
            ));
        }
        let ev = event_context(&ctx);
        let ended = account::end_sessions(
            &mut tx,
            &ev,
            &Target::One(row.session_id),
            RevokeReason::TokenReuse,
            Actor::system(),
            now,
        )
        .await?;
        tx.commit()
            .await
            .map_err(StoreError::at("commit reuse revocation"))?;
        s.markers.sessions_revoked(&ended).await;
        return Err(error::unauthorized(
            "TOKEN_REUSE_DETECTED",
            "Refresh token reuse detected; session revoked",
        ));
    }
    if row.expires_at <= now || row.session_expires_at <= now {
        return Err(error::unauthorized(
            "TOKEN_EXPIRED",
            "Refresh token has expired",
        ));
    }
    let Some(user) = users::by_id(&mut tx, row.user_id).await? else {
        return Err(error::unauthorized(
            "TOKEN_INVALID",
            "Refresh token is invalid",
        ));
    };
    let (new_token, new_hash) = tokens::refresh_token()?;
    let refresh_ttl =
        chrono::TimeDelta::from_std(s.config.refresh_ttl).unwrap_or(chrono::TimeDelta::days(7));
    let new_id = Uuid::new_v4();
    if !sessions::rotate_and_reissue(
        &mut tx,
        row.id,
        new_id,
        row.session_id,
        row.device_ref,
        &new_hash,
        now,
        now + refresh_ttl,
    )
    .await?
    {
        return Err(error::unauthorized(
            "TOKEN_INVALID",
            "Refresh token was already used",
        ));
    }
    tx.commit()
        .await
        .map_err(StoreError::at("commit refresh"))?;
    let access = tokens::access_token(
        &s.keys,
        &s.config.issuer,
        s.config.access_ttl,
        &user,
        row.session_id,
    )?;
    Ok(Data(json!({
        "user": public_user(&user),
        "accessToken": access,
        "refreshToken": new_token,
        "expiresIn": payplane_kit::duration::format(s.config.access_ttl),
        "sessionId": row.session_id,
    })))
}

/// `POST /api/auth/logout` (api.md §4.7): identification is relaxed; ending is idempotent.
pub async fn logout(
    State(s): State<AppState>,
    ctx: RequestContext,
    headers: http::HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let all = f.boolean("allDevices", false).unwrap_or(false);
    let refresh = f.secret("refreshToken", false, 0, LOGOUT_REFRESH_TOKEN_MAX);
    f.finish()?;
    let now = time::now();
    let mut identified = None;
    if let Some(token) = bearer_from_headers(&headers)
        && let Ok(claims) = s.authn.verifier.verify_ignoring_expiry(token).await
    {
        identified = Some((claims.sid, claims.sub));
    }
    let mut tx = s.db.begin().await.map_err(begin_err)?;
    if identified.is_none()
        && let Some(rt) = refresh.filter(|t| !t.is_empty())
    {
        identified =
            sessions::live_session_by_refresh(&mut tx, &tokens::hash_refresh(&rt), now).await?;
    }
    let Some((sid, uid)) = identified else {
        return Err(payplane_authn::extract::unauthorized());
    };
    let Some(user) = users::lock(&mut tx, uid).await? else {
        return Ok(Data(
            json!({ "message": "Logged out successfully", "revokedSessions": 0 }),
        ));
    };
    let ev = event_context(&ctx);
    let (target, reason) = if all {
        (Target::AllOf(uid), RevokeReason::LogoutAll)
    } else {
        (Target::One(sid), RevokeReason::Logout)
    };
    let ended = account::end_sessions(&mut tx, &ev, &target, reason, Actor::user(uid), now).await?;
    let event = UserLogout {
        user_id: uid,
        email: user.email.clone(),
        session_id: sid,
        all_devices: all,
        revoked_session_ids: ended.iter().map(|r| r.id).collect(),
        ip_address: ctx.client.ip.map(|ip| ip.to_string()),
        user_agent: ctx.client.user_agent.clone(),
        logout_at: now,
    };
    account::publish(&mut tx, &ev, uid, &event).await?;
    tx.commit().await.map_err(StoreError::at("commit logout"))?;
    s.markers.sessions_revoked(&ended).await;
    Ok(Data(
        json!({ "message": "Logged out successfully", "revokedSessions": ended.len() }),
    ))
}
