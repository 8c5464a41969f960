//! The real client address behind trusted proxies (api.md §3.2) and the user agent, as
//! recorded in sessions, events and audit entries. Pure header logic plus an extractor.

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;
use ipnet::IpNet;

/// The configured trusted proxy ranges, installed as a request extension by the HTTP stack.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<Vec<IpNet>>);

fn trusted(ip: IpAddr, nets: &[IpNet]) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

/// If the peer is trusted, walk `X-Forwarded-For` right to left and take the first untrusted
/// address (the left-most if all are trusted); otherwise the peer itself.
pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, nets: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, nets) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let hops: Option<Vec<IpAddr>> = header
        .split(',')
        .map(|h| h.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical()))
        .collect();
    let Some(hops) = hops.filter(|h| !h.is_empty()) else {
        return peer;
    };
    hops.iter()
        .rev()
        .find(|ip| !trusted(**ip, nets))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// Who is calling: client IP (when known) and user agent (truncated to 512 characters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let nets = parts
            .extensions
            .get::<TrustedProxies>()
            .cloned()
            .unwrap_or_default();
        let xff = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| resolve(addr.ip(), xff, &nets.0));
        let user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        Ok(ClientInfo { ip, user_agent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn walks_forwarded_for_only_from_trusted_peers() {
        let t = nets(&["127.0.0.0/8", "10.0.0.0/8"]);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let outsider: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            resolve(peer, Some("203.0.113.7, 10.0.0.2"), &t).to_string(),
            "203.0.113.7"
        );
        assert_eq!(
            resolve(peer, Some("10.0.0.3, 10.0.0.2"), &t).to_string(),
            "10.0.0.3"
        );
        assert_eq!(resolve(peer, Some("garbage"), &t), peer);
        assert_eq!(resolve(peer, None, &t), peer);
        assert_eq!(resolve(outsider, Some("203.0.113.7"), &t), outsider);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            resolve(mapped, Some("203.0.113.9"), &t).to_string(),
            "203.0.113.9"
        );
    }
}
