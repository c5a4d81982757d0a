//! Where a request comes from: the connection's peer, or — when that peer
//! is a reverse proxy the operator named (`KEHU_TRUSTED_PROXIES`) — the
//! client the proxy says it forwarded (`X-Forwarded-For`). Resolved once
//! per request by [`resolve`] and read from the request's extensions by
//! the audit log, the rate limits, logins and web forms.
//!
//! *Invariant*: a forwarded header is believed only from a trusted peer,
//! and only up to the first address not itself trusted (read from the
//! right: each trusted proxy appends the address it saw), so a client
//! cannot name its own address by sending the header.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};

/// The resolved client address of a request (absent: not known, e.g. a
/// request made in-process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// An address block: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    addr: IpAddr,
    bits: u8,
}

impl Block {
    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), self.bits, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.bits, 128)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, bits: u8, width: u32) -> bool {
    let shift = width - u32::from(bits);
    shift >= width || (a >> shift) == (b >> shift)
}

/// An IPv4 address reached over IPv6 (`::ffff:10.0.0.1`) as the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Block>);

impl TrustedProxies {
    /// `10.0.0.5, 192.168.0.0/16, ::1` — addresses or blocks, separated by
    /// commas or spaces; an empty text trusts no one.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let mut blocks = Vec::new();
        for item in text
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (item, None),
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or block"))?;
            let addr = canonical(addr);
            let width = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => width,
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= width)
                    .ok_or_else(|| format!("{item:?}: the prefix length must be 0–{width}"))?,
            };
            blocks.push(Block { addr, bits });
        }
        Ok(TrustedProxies(blocks))
    }

    /// From `KEHU_TRUSTED_PROXIES` (unset: no proxy is trusted).
    pub fn from_env() -> Result<TrustedProxies, String> {
        match std::env::var("KEHU_TRUSTED_PROXIES") {
            Ok(v) => TrustedProxies::parse(&v).map_err(|e| format!("KEHU_TRUSTED_PROXIES: {e}")),
            Err(_) => Ok(TrustedProxies::default()),
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|b| b.contains(ip))
    }

    /// The client behind `peer`: the peer itself unless it is trusted and
    /// forwarded the request, then the rightmost forwarded address that is
    /// not a trusted proxy (the leftmost if all are). A malformed entry
    /// ends the walk: the last address read stands.
    pub fn client(&self, peer: IpAddr, forwarded: &[&str]) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        for hop in forwarded
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .rev()
        {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                break;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// Middleware: the request's client address, resolved once.
pub async fn resolve(
    State(trusted): State<std::sync::Arc<TrustedProxies>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let ip = trusted.client(peer.ip(), &forwarded);
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

/// The resolved client address of a request, as text.
pub fn client_of(parts: &Parts) -> Option<String> {
    parts.extensions.get::<ClientIp>().map(|c| c.0.to_string())
}

/// Extractor: the resolved client address as text (`unknown` when none
/// was resolved).
pub struct ClientAddr(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            client_of(parts).unwrap_or_else(|| "unknown".into()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1 ::1").expect("parse");
        let cases: &[(&str, &[&str], &str)] = &[
            // Not behind a trusted proxy: the header is the client's own words.
            ("203.0.113.7", &["1.2.3.4"], "203.0.113.7"),
            // One trusted proxy.
            ("127.0.0.1", &["198.51.100.9"], "198.51.100.9"),
            ("::1", &["198.51.100.9"], "198.51.100.9"),
            ("::ffff:127.0.0.1", &["198.51.100.9"], "198.51.100.9"),
            // A chain: the rightmost address not a trusted proxy; what the
            // client prepended itself is ignored.
            (
                "127.0.0.1",
                &["6.6.6.6, 198.51.100.9, 10.1.2.3"],
                "198.51.100.9",
            ),
            (
                "127.0.0.1",
                &["6.6.6.6", "198.51.100.9, 10.1.2.3"],
                "198.51.100.9",
            ),
            // All trusted: the leftmost.
            ("127.0.0.1", &["10.9.9.9, 10.1.2.3"], "10.9.9.9"),
            // No header, or garbage: the proxy (or the last address read).
            ("127.0.0.1", &[], "127.0.0.1"),
            ("127.0.0.1", &["unknown"], "127.0.0.1"),
            ("127.0.0.1", &["198.51.100.9, junk, 10.1.2.3"], "10.1.2.3"),
        ];
        for (peer, forwarded, want) in cases {
            assert_eq!(
                trusted.client(ip(peer), forwarded),
                ip(want),
                "{peer} {forwarded:?}"
            );
        }
        let nobody = TrustedProxies::default();
        assert_eq!(
            nobody.client(ip("127.0.0.1"), &["1.2.3.4"]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn parse_names_what_is_wrong() {
        assert_eq!(
            TrustedProxies::parse("").expect("empty"),
            TrustedProxies::default()
        );
        for bad in ["10.0.0.0/33", "fe80::/129", "proxy.local", "10.0.0.1/x"] {
            let e = TrustedProxies::parse(bad).expect_err(bad);
            assert!(e.contains(bad.split('/').next().unwrap_or(bad)), "{e}");
        }
        let all = TrustedProxies::parse("0.0.0.0/0").expect("all");
        assert!(all.trusts(ip("8.8.8.8")) && !all.trusts(ip("2001:db8::1")));
    }
}
