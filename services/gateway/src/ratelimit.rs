//! Rate limiting of api.md §3.3: token buckets in Redis (`rl:api:<ip>`, `rl:auth:<ip>`,
//! data.md §6.1) shared by every replica, keyed on the real client IP, refilled continuously
//! on the Redis clock, with the `RateLimit-*` / `Retry-After` headers. Fails open when Redis
//! is unavailable. Does I/O (one script call per counted request).

use std::{sync::Arc, time::Duration};

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use payplane_kit::ApiError;
use redis::aio::ConnectionManager;

use crate::{
    config::{Bucket, RateLimits},
    edge::{Client, is_preflight},
};

/// Takes one token from each bucket only if every bucket has one; returns the tokens left in
/// each (after taking) and whether the request was admitted. State is `{tokens, ms}` hashes.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local tokens = {}
local ok = 1
for i = 1, n do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local s = redis.call('HMGET', KEYS[i], 'k', 'ms')
  local k = tonumber(s[1])
  local ms = tonumber(s[2])
  if k == nil or ms == nil then k = burst; ms = now end
  k = math.min(burst, k + math.max(0, now - ms) * rate)
  tokens[i] = k
  if k < 1 then ok = 0 end
end
local out = {ok}
for i = 1, n do
  if ok == 1 then tokens[i] = tokens[i] - 1 end
  redis.call('HSET', KEYS[i], 'k', tostring(tokens[i]), 'ms', tostring(now))
  redis.call('EXPIRE', KEYS[i], 120)
  out[i + 1] = tostring(tokens[i])
end
return out
";

#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    limits: Arc<RateLimits>,
    script: Arc<redis::Script>,
}

/// Which buckets a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Exempt,
    Api,
    ApiAndAuth,
    /// The `auth` bucket alone: a GraphQL login/register/refreshToken operation, whose `api`
    /// token the middleware already took.
    AuthOnly,
}

/// Classifies a request (api.md §3.3).
pub fn classify(method: &Method, path: &str) -> Counted {
    let auth_paths = ["/api/auth/login", "/api/auth/register", "/api/auth/refresh"];
    if method == Method::POST && path == "/api/payments/webhooks/psp" {
        return Counted::Exempt;
    }
    if method == Method::POST && auth_paths.contains(&path) {
        return Counted::ApiAndAuth;
    }
    if path.starts_with("/api/") || path == "/api" || path == "/graphql" || path == "/ws" {
        return Counted::Api;
    }
    Counted::Exempt
}

/// Tokens left in one bucket once a request was counted.
pub struct BucketState {
    bucket: Bucket,
    tokens: f64,
}

impl BucketState {
    fn rate_per_sec(&self) -> f64 {
        f64::from(self.bucket.per_minute) / 60.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate-limit script failed")]
    Redis(#[source] redis::RedisError),
    #[error("rate-limit script timed out")]
    Timeout,
    #[error("rate-limit script answered {0:?}")]
    Answer(Vec<String>),
}

impl RateLimiter {
    pub fn new(redis: ConnectionManager, limits: RateLimits) -> Self {
        Self {
            redis,
            limits: Arc::new(limits),
            script: Arc::new(redis::Script::new(SCRIPT)),
        }
    }

    async fn take(
        &self,
        ip: &str,
        counted: Counted,
    ) -> Result<(bool, Vec<BucketState>), RateLimitError> {
        let prefix = &self.limits.key_prefix;
        let mut buckets = vec![("api", self.limits.api)];
        if counted == Counted::AuthOnly {
            buckets.clear();
        }
        if matches!(counted, Counted::ApiAndAuth | Counted::AuthOnly) {
            buckets.push(("auth", self.limits.auth));
        }
        let mut inv = self.script.prepare_invoke();
        for (name, b) in &buckets {
            inv.key(format!("{prefix}rl:{name}:{ip}"));
            inv.arg(f64::from(b.per_minute) / 60_000.0).arg(b.burst);
        }
        let mut conn = self.redis.clone();
        let answer: Vec<String> =
            tokio::time::timeout(Duration::from_secs(1), inv.invoke_async(&mut conn))
                .await
                .map_err(|_| RateLimitError::Timeout)?
                .map_err(RateLimitError::Redis)?;
        let parsed: Option<Vec<f64>> = answer.iter().map(|s| s.parse::<f64>().ok()).collect();
        let Some(parsed) = parsed.filter(|p| p.len() == buckets.len() + 1) else {
            return Err(RateLimitError::Answer(answer));
        };
        let admitted = parsed[0] >= 1.0;
        let states = buckets
            .iter()
            .zip(&parsed[1..])
            .map(|((_, bucket), tokens)| BucketState {
                bucket: *bucket,
                tokens: *tokens,
            })
            .collect();
        Ok((admitted, states))
    }

    /// Takes one token from the `auth` bucket for `ip` (GraphQL auth mutations, api.md §3.3);
    /// the 429 error when it is empty. Fails open like the middleware.
    pub async fn take_auth_only(&self, ip: std::net::IpAddr) -> Option<ApiError> {
        let key = payplane_kit::client_ip::rate_key(ip);
        match self.take(&key, Counted::AuthOnly).await {
            Ok((false, states)) => Some(refusal("auth", &states)),
            Ok((true, _)) | Err(_) => None,
        }
    }
}

/// The 429 for a request `bucket` refused, with when to retry; counted by bucket.
fn refusal(bucket: &'static str, states: &[BucketState]) -> ApiError {
    metrics::counter!("rate_limit_rejections_total", "bucket" => bucket).increment(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMIT_EXCEEDED",
        "Too many requests",
    )
    .with_header(
        http::header::RETRY_AFTER,
        &format!("{}", retry_after(states)),
    )
}

fn headers_for(states: &[BucketState], h: &mut HeaderMap) {
    // The most constrained bucket: fewest whole tokens left.
    let Some(s) = states
        .iter()
        .min_by(|a, b| a.tokens.floor().total_cmp(&b.tokens.floor()))
    else {
        return;
    };
    let remaining = s.tokens.max(0.0).floor();
    let reset = ((f64::from(s.bucket.burst) - s.tokens) / s.rate_per_sec())
        .ceil()
        .max(0.0);
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    put("ratelimit-limit", s.bucket.per_minute.to_string());
    put("ratelimit-remaining", format!("{remaining}"));
    put("ratelimit-reset", format!("{reset}"));
    put(
        "ratelimit-policy",
        format!("{};w=60;burst={}", s.bucket.per_minute, s.bucket.burst),
    );
}

/// Seconds until every exhausted bucket admits one request (minimum 1).
fn retry_after(states: &[BucketState]) -> f64 {
    states
        .iter()
        .filter(|s| s.tokens < 1.0)
        .map(|s| ((1.0 - s.tokens) / s.rate_per_sec()).ceil())
        .fold(1.0, f64::max)
}

/// What the rate limiter decided for one request.
pub enum Admission {
    /// Not counted (exempt path, preflight, limits off) or the limiter was unreachable
    /// (fail open).
    Uncounted,
    /// Counted and admitted: the most constrained bucket's headers go on the answer.
    Admitted(Vec<BucketState>),
    /// The 429 answer, with its headers; the request never reaches an upstream.
    Refused(Response),
}

impl Admission {
    /// Puts the `RateLimit-*` headers of a counted, admitted request on its answer.
    pub fn decorate(&self, h: &mut HeaderMap) {
        if let Self::Admitted(states) = self {
            headers_for(states, h);
        }
    }
}

/// Which buckets a request counts against and whose they are; `None` when it is not counted
/// (limits off, exempt path, preflight, no client IP). Read before any await: the request
/// itself is not `Sync`, so it is not borrowed across the Redis call.
pub fn counting<'a>(
    limiter: Option<&'a RateLimiter>,
    req: &Request,
) -> Option<(&'a RateLimiter, Counted, std::net::IpAddr)> {
    let limiter = limiter?;
    let counted = classify(req.method(), req.uri().path());
    if counted == Counted::Exempt || is_preflight(req) {
        return None;
    }
    let Client { ip, .. } = Client::of(req.extensions())?;
    Some((limiter, counted, ip))
}

/// Counts a request against its buckets (step 9 of the gateway stack).
pub async fn admit(limiter: &RateLimiter, counted: Counted, ip: std::net::IpAddr) -> Admission {
    match limiter
        .take(&payplane_kit::client_ip::rate_key(ip), counted)
        .await
    {
        Ok((true, states)) => Admission::Admitted(states),
        Ok((false, states)) => {
            let bucket = if states.len() > 1 && states[1].tokens < 1.0 {
                "auth"
            } else {
                "api"
            };
            let mut res = refusal(bucket, &states).into_response();
            headers_for(&states, res.headers_mut());
            Admission::Refused(res)
        }
        Err(e) => {
            tracing::warn!(error = %e, "rate limiter unavailable; letting the request through");
            metrics::counter!("rate_limit_errors_total").increment(1);
            Admission::Uncounted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_table() {
        assert_eq!(
            classify(&Method::POST, "/api/auth/login"),
            Counted::ApiAndAuth
        );
        assert_eq!(classify(&Method::GET, "/api/auth/login"), Counted::Api);
        assert_eq!(
            classify(&Method::POST, "/api/payments/webhooks/psp"),
            Counted::Exempt
        );
        assert_eq!(classify(&Method::GET, "/health/ready"), Counted::Exempt);
        assert_eq!(
            classify(&Method::GET, "/api-docs/openapi.json"),
            Counted::Exempt
        );
        assert_eq!(classify(&Method::GET, "/ws"), Counted::Api);
    }

    #[test]
    fn headers_describe_the_most_constrained_bucket() {
        let states = [
            BucketState {
                bucket: Bucket {
                    per_minute: 100,
                    burst: 20,
                },
                tokens: 7.5,
            },
            BucketState {
                bucket: Bucket {
                    per_minute: 10,
                    burst: 5,
                },
                tokens: 0.5,
            },
        ];
        let mut h = HeaderMap::new();
        headers_for(&states, &mut h);
        assert_eq!(h["ratelimit-limit"], "10");
        assert_eq!(h["ratelimit-remaining"], "0");
        assert_eq!(h["ratelimit-policy"], "10;w=60;burst=5");
        assert_eq!(h["ratelimit-reset"], "27");
        assert!((retry_after(&states) - 3.0).abs() < f64::EPSILON);
    }
}
