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

/// If the peer is trusted, walk `X-Forwarded-For` right to left through trusted proxies: the
/// first untrusted address is the client; an unparsable entry stops the walk at the last good
/// address (so junk a client puts on the left cannot hide it behind the proxy); if every hop
/// is trusted, the left-most. An untrusted peer is the client itself.
pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, nets: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, nets) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut last_good = peer;
    for hop in header.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            return last_good;
        };
        let ip = ip.to_canonical();
        if !trusted(ip, nets) {
            return ip;
        }
        last_good = ip;
    }
    last_good
}

/// The rate-limit identity of an address: IPv4 as is, IPv6 as its /64 (one host is usually
/// given a whole /64 and can rotate through it freely).
pub fn rate_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
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
        // (peer, X-Forwarded-For, the client address resolved)
        let cases = [
            ("127.0.0.1", Some("203.0.113.7, 10.0.0.2"), "203.0.113.7"),
            ("127.0.0.1", Some("10.0.0.3, 10.0.0.2"), "10.0.0.3"),
            ("127.0.0.1", Some("garbage"), "127.0.0.1"),
            // Junk on the left does not hide the client behind the proxy (a second budget).
            ("127.0.0.1", Some("x, 203.0.113.7"), "203.0.113.7"),
            ("127.0.0.1", Some("x, 203.0.113.7, 10.0.0.2"), "203.0.113.7"),
            // Junk on the right stops at the last good address.
            ("127.0.0.1", Some("203.0.113.7, x, 10.0.0.2"), "10.0.0.2"),
            ("127.0.0.1", None, "127.0.0.1"),
            // An untrusted peer is the client, whatever it forwards.
            ("198.51.100.1", Some("203.0.113.7"), "198.51.100.1"),
            ("::ffff:127.0.0.1", Some("203.0.113.9"), "203.0.113.9"),
        ];
        for (peer, forwarded, client) in cases {
            let peer: IpAddr = peer.parse().unwrap();
            let expected: IpAddr = client.parse().unwrap();
            assert_eq!(
                resolve(peer, forwarded, &t),
                expected,
                "{peer} {forwarded:?}"
            );
        }
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(rate_key(a), rate_key(b));
        assert_ne!(rate_key(a), rate_key(other));
        assert_eq!(rate_key(a), "2001:db8:1:2::/64");
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(rate_key(v4), "203.0.113.7");
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(rate_key(mapped), "203.0.113.7");
    }
}
