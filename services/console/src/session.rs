//! Browser sessions done as a backend-for-frontend: the API's tokens live in one sealed
//! (AES-256-GCM) HttpOnly cookie that page JavaScript can never read; the access token is
//! refreshed here, before it expires or when the API says it has, with one refresh in flight
//! per refresh token (parallel requests of one browser share its result instead of tripping
//! the API's reuse detection). Also: the CSRF cookie, the device id cookie, and the request
//! extensions handlers read them from.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use axum::{
    extract::{FromRequestParts, Request, State},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use payplane_kit::client_ip::ClientInfo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use crate::{
    api::{CallError, Caller, Gateway},
    app::AppState,
};

/// Seals and opens cookie values with the configured key.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        // AES-256 accepts every 32-byte key, so construction cannot fail for this input.
        let unbound = UnboundKey::new(&AES_256_GCM, key).unwrap_or_else(|_| unreachable!());
        Self {
            key: LessSafeKey::new(unbound),
        }
    }

    pub fn seal(&self, plain: &[u8]) -> Option<String> {
        let mut nonce = [0_u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"pp_session"),
                &mut buf,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(b"pp_session"), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    #[default]
    System,
}

impl Theme {
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            "system" => Some(Theme::System),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
}

impl SessionUser {
    pub fn is_admin(&self) -> bool {
        self.role == "ADMIN"
    }

    pub fn sees_reports(&self) -> bool {
        matches!(self.role.as_str(), "ADMIN" | "VENDOR")
    }

    fn from_api(user: &Value) -> Self {
        let s = |k: &str| user.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        Self {
            id: s("id"),
            email: s("email"),
            name: s("name"),
            role: s("role"),
        }
    }
}

/// What the session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub access: String,
    pub refresh: String,
    /// Unix seconds when the access token expires.
    pub exp: i64,
    pub user: SessionUser,
    pub theme: Theme,
}

impl SessionData {
    /// From a login, registration or refresh answer (api.md §4.2, §4.6).
    pub fn from_auth(data: &Value, theme: Theme) -> Option<Self> {
        let access = data.get("accessToken")?.as_str()?.to_owned();
        let refresh = data.get("refreshToken")?.as_str()?.to_owned();
        let lifetime = data
            .get("expiresIn")
            .and_then(Value::as_str)
            .and_then(parse_lifetime)
            .unwrap_or(Duration::from_secs(900));
        let exp = chrono::Utc::now().timestamp() + i64::try_from(lifetime.as_secs()).ok()?;
        Some(Self {
            access,
            refresh,
            exp,
            user: SessionUser::from_api(data.get("user")?),
            theme,
        })
    }

    fn expires_soon(&self) -> bool {
        // A minute of margin: the API allows 30 s of leeway, and a page may make several calls.
        self.exp - 60 <= chrono::Utc::now().timestamp()
    }
}

/// `"15m"` → 900 s (api.md §4.2 `expiresIn`).
fn parse_lifetime(s: &str) -> Option<Duration> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// The session of one request, shared between the handler and the cookie writer.
#[derive(Debug, Default)]
struct Slot {
    data: Option<SessionData>,
    changed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SessionCell(Arc<Mutex<Slot>>);

impl SessionCell {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // A poisoned lock only means a handler panicked mid-update; the data is still usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self) -> Option<SessionData> {
        self.lock().data.clone()
    }

    pub fn set(&self, data: Option<SessionData>) {
        let mut slot = self.lock();
        slot.data = data;
        slot.changed = true;
    }
}

/// Refreshes in flight, keyed by the SHA-256 of the refresh token they consume; answers are
/// kept for 30 s so a request that arrives just after the winner still gets its tokens.
/// One refresh's outcome: the API's `data`, or its error code.
type RefreshCell = Arc<OnceCell<Result<Value, String>>>;

#[derive(Default)]
pub struct Refresher {
    inflight: Mutex<HashMap<[u8; 32], (Instant, RefreshCell)>>,
}

impl Refresher {
    async fn refresh(
        &self,
        gateway: &Gateway,
        caller: &Caller,
        refresh_token: &str,
    ) -> Result<Value, String> {
        let key: [u8; 32] = Sha256::digest(refresh_token.as_bytes()).into();
        let cell = {
            let mut map = self
                .inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(30));
            map.entry(key)
                .or_insert_with(|| (Instant::now(), Arc::new(OnceCell::new())))
                .1
                .clone()
        };
        cell.get_or_init(|| async {
            let body = json!({ "refreshToken": refresh_token });
            match gateway
                .send(
                    caller,
                    None,
                    Method::POST,
                    "/api/auth/refresh",
                    Some(&body),
                    None,
                )
                .await
            {
                Ok(data) => Ok(data),
                Err(e) => Err(e.code().to_owned()),
            }
        })
        .await
        .clone()
    }
}

/// The anti-forgery token of this browser (double-submit: cookie and form field must match).
#[derive(Debug, Clone)]
pub struct Csrf(pub String);

/// This browser's device id, sent at sign-in so the API keeps one session per browser.
#[derive(Debug, Clone)]
pub struct DeviceId(pub String);

/// Cookie names; `__Host-` pins them to this origin when served over TLS.
pub struct CookieNames {
    pub session: &'static str,
    pub csrf: &'static str,
    pub device: &'static str,
}

pub fn cookie_names(secure: bool) -> CookieNames {
    if secure {
        CookieNames {
            session: "__Host-pp_session",
            csrf: "__Host-pp_csrf",
            device: "__Host-pp_device",
        }
    } else {
        CookieNames {
            session: "pp_session",
            csrf: "pp_csrf",
            device: "pp_device",
        }
    }
}

fn cookies(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn set_cookie(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    max_age: Option<u64>,
    same_site: &str,
    secure: bool,
) {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        use std::fmt::Write;
        let _ = write!(c, "; Max-Age={age}");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        headers.append(header::SET_COOKIE, v);
    }
}

pub fn random_token() -> String {
    let mut bytes = [0_u8; 24];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Form posts and htmx requests carry the CSRF token as `_csrf` or `X-CSRF-Token`.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| crate::forms::decode_component(v))
}

/// The largest form the console accepts (its forms are small; this bounds the CSRF read).
const FORM_LIMIT: usize = 256 * 1024;

/// Reads the cookies into request extensions, refuses cross-site or token-less unsafe
/// requests, runs the handler, then writes back whatever cookies changed.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let secure = state.config.secure_cookies();
    let names = cookie_names(secure);
    let jar = cookies(req.headers());
    let (csrf, new_csrf) = match jar.get(names.csrf).filter(|v| v.len() >= 16) {
        Some(v) => (v.clone(), false),
        None => (random_token(), true),
    };
    let (device, new_device) = match jar.get(names.device).filter(|v| !v.is_empty()) {
        Some(v) => (v.clone(), false),
        None => (format!("web-{}", random_token()), true),
    };
    let data = jar
        .get(names.session)
        .and_then(|v| state.sealer.open(v))
        .and_then(|plain| serde_json::from_slice::<SessionData>(&plain).ok());
    let had_session = jar.contains_key(names.session);
    let cell = SessionCell(Arc::new(Mutex::new(Slot {
        data,
        changed: false,
    })));

    let (parts, body) = req.into_parts();
    let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let req = if unsafe_method {
        let origin_ok = parts
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|o| o == state.config.public_origin());
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "Form too large").into_response();
        };
        let presented = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| form_field(&bytes, "_csrf"));
        let token_ok =
            !new_csrf && presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(csrf.as_bytes())));
        if !(origin_ok && token_ok) {
            tracing::warn!(
                origin_ok,
                token_ok,
                "refused a form post without a valid CSRF token"
            );
            return crate::views::pages::forbidden_form().into_response();
        }
        Request::from_parts(parts, axum::body::Body::from(bytes))
    } else {
        Request::from_parts(parts, body)
    };
    let mut req = req;
    req.extensions_mut().insert(cell.clone());
    req.extensions_mut().insert(Csrf(csrf.clone()));
    req.extensions_mut().insert(DeviceId(device.clone()));
    let mut res = next.run(req).await;

    let h = res.headers_mut();
    if new_csrf {
        set_cookie(h, names.csrf, &csrf, None, "Strict", secure);
    }
    if new_device {
        set_cookie(h, names.device, &device, Some(400 * 86_400), "Lax", secure);
    }
    let slot = cell.lock();
    if slot.changed {
        match slot.data.as_ref().and_then(|d| serde_json::to_vec(d).ok()) {
            Some(plain) => {
                if let Some(sealed) = state.sealer.seal(&plain) {
                    // 30 days: the API's absolute session lifetime (api.md §2.3).
                    set_cookie(h, names.session, &sealed, Some(30 * 86_400), "Lax", secure);
                }
            }
            None => set_cookie(h, names.session, "", Some(0), "Lax", secure),
        }
    } else if had_session && slot.data.is_none() {
        // A cookie we cannot open (old key, tampering): drop it.
        set_cookie(h, names.session, "", Some(0), "Lax", secure);
    }
    res
}

/// Everything a handler needs about the browser making the request.
#[derive(Clone)]
pub struct Ctx {
    pub state: AppState,
    pub cell: SessionCell,
    pub csrf: String,
    pub device_id: String,
    pub caller: Caller,
    /// The path and query asked for, to come back to after signing in.
    pub here: String,
    /// Whether htmx made the request (answers then redirect with `HX-Redirect`).
    pub htmx: bool,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let info = ClientInfo::from_request_parts(parts, state).await?;
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self {
            state: state.clone(),
            cell: parts
                .extensions
                .get::<SessionCell>()
                .cloned()
                .unwrap_or_default(),
            csrf: parts
                .extensions
                .get::<Csrf>()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
            device_id: parts
                .extensions
                .get::<DeviceId>()
                .map(|d| d.0.clone())
                .unwrap_or_default(),
            caller: Caller {
                ip: info.ip,
                user_agent: info.user_agent,
                request_id,
            },
            here: parts
                .uri
                .path_and_query()
                .map_or("/", http::uri::PathAndQuery::as_str)
                .to_owned(),
            htmx: parts.headers.contains_key("hx-request"),
        })
    }
}

impl Ctx {
    pub fn session(&self) -> Option<SessionData> {
        self.cell.get()
    }

    /// Calls the API without a token (sign-in, registration).
    pub async fn public(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<Value, CallError> {
        self.state
            .gateway
            .send(&self.caller, None, method, path, Some(body), None)
            .await
    }

    /// Calls the API as the signed-in user, refreshing the access token before it expires or
    /// once when the API answers `TOKEN_EXPIRED` (role or profile changed, api.md §2.4).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, CallError> {
        let Some(mut session) = self.session() else {
            return Err(CallError::SignedOut { reason: "expired" });
        };
        if session.expires_soon() {
            session = self.refresh(&session).await?;
        }
        let gw = &self.state.gateway;
        let first = gw
            .send(
                &self.caller,
                Some(&session.access),
                method.clone(),
                path,
                body,
                idempotency_key,
            )
            .await;
        match first {
            Err(CallError::Rejected {
                status: 401,
                ref code,
                ..
            }) if code == "TOKEN_EXPIRED" => {
                let session = self.refresh(&session).await?;
                let again = gw
                    .send(
                        &self.caller,
                        Some(&session.access),
                        method,
                        path,
                        body,
                        idempotency_key,
                    )
                    .await;
                self.signed_out_on_401(again)
            }
            other => self.signed_out_on_401(other),
        }
    }

    fn signed_out_on_401(&self, res: Result<Value, CallError>) -> Result<Value, CallError> {
        match res {
            Err(CallError::Rejected {
                status: 401, code, ..
            }) => {
                self.cell.set(None);
                Err(CallError::SignedOut {
                    reason: if code == "SESSION_REVOKED" {
                        "revoked"
                    } else {
                        "expired"
                    },
                })
            }
            other => other,
        }
    }

    /// Rotates the refresh token; a dead one signs the browser out.
    pub async fn refresh(&self, session: &SessionData) -> Result<SessionData, CallError> {
        match self
            .state
            .refresher
            .refresh(&self.state.gateway, &self.caller, &session.refresh)
            .await
        {
            Ok(data) => {
                let fresh = SessionData::from_auth(&data, session.theme)
                    .ok_or(CallError::SignedOut { reason: "expired" })?;
                self.cell.set(Some(fresh.clone()));
                Ok(fresh)
            }
            Err(code) if code == "SERVICE_UNAVAILABLE" || code == "RATE_LIMIT_EXCEEDED" => {
                Err(CallError::Rejected {
                    status: 503,
                    code,
                    message: "Could not refresh the session".into(),
                    details: Value::Null,
                })
            }
            Err(code) => {
                self.cell.set(None);
                Err(CallError::SignedOut {
                    reason: if code == "SESSION_REVOKED" || code == "TOKEN_REUSE_DETECTED" {
                        "revoked"
                    } else {
                        "expired"
                    },
                })
            }
        }
    }

    /// Where to send a browser whose session has ended: sign-in, with a message, coming back
    /// here afterwards. htmx requests get `HX-Redirect` so the whole page moves.
    pub fn to_signin(&self, reason: &str) -> Response {
        let next = if self.here.starts_with("/session") {
            "/"
        } else {
            &self.here
        };
        let url = format!(
            "/signin?reason={reason}&next={}",
            crate::forms::encode_component(next)
        );
        self.redirect(&url)
    }

    pub fn redirect(&self, url: &str) -> Response {
        if self.htmx {
            let mut res = StatusCode::NO_CONTENT.into_response();
            if let Ok(v) = HeaderValue::from_str(url) {
                res.headers_mut().insert("hx-redirect", v);
            }
            res
        } else {
            Redirect::to(url).into_response()
        }
    }
}
