//! The client's address, as the edge of our system saw it.
//!
//! A request's TCP peer is the client unless the peer is a proxy we trust (the gateway,
//! a load balancer named in `TRUSTED_PROXIES`); then the client is the right-most address
//! of `x-forwarded-for` that is not itself a trusted proxy. Addresses a client writes
//! into `x-forwarded-for` are never believed unless a trusted proxy passed them on, so a
//! client cannot pick the address its limits are counted against.

use std::net::IpAddr;
use std::str::FromStr;

/// The header proxies append the address they saw to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// The header in which the gateway presents its own service token to the auth service,
/// vouching for the `x-forwarded-for` it wrote: the auth service believes that header
/// from this token only, not from whatever address a call comes from (every pod, every
/// local process shares those). The gateway drops a client's copy.
pub const FORWARDER_TOKEN: &str = "x-forwarder-token";

/// Networks whose requests may carry the client's address in `x-forwarded-for`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// No proxy is trusted: the TCP peer is the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a list of addresses or CIDR networks (`127.0.0.1`, `10.0.0.0/8`, `::1`).
    ///
    /// # Errors
    /// The entry that is neither.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut nets = Vec::new();
        for raw in entries.iter().map(|e| e.as_ref().trim()).filter(|e| !e.is_empty()) {
            let net = match ipnet::IpNet::from_str(raw) {
                Ok(n) => n,
                Err(_) => IpAddr::from_str(raw)
                    .map(ipnet::IpNet::from)
                    .map_err(|_| format!("'{raw}' is not an IP address or a CIDR network"))?,
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 address they map.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address: the peer, or when the peer is trusted, the right-most untrusted
/// hop of `forwarded_for`. A malformed hop ends the walk at the last hop we could
/// believe.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let mut client = peer;
    for hop in forwarded_for.unwrap_or_default().rsplit(',').map(str::trim).filter(|h| !h.is_empty()) {
        let Ok(ip) = IpAddr::from_str(hop) else { return Some(client) };
        client = canonical(ip);
        if !trusted.contains(client) {
            return Some(client);
        }
    }
    Some(client)
}

/// The address a client is counted under (its limits, its connections): itself, or its
/// /64 for IPv6 (one host usually holds the whole prefix); an IPv4-mapped address is the
/// IPv4 address.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// The address the last proxy saw (the right-most hop of `forwarded_for`), for a proxy
/// trusted by its identity rather than its address; `None` when that hop is no address.
pub fn last_hop(forwarded_for: Option<&str>) -> Option<IpAddr> {
    let hop = forwarded_for?.rsplit(',').map(str::trim).find(|h| !h.is_empty())?;
    IpAddr::from_str(hop).ok().map(canonical)
}

/// The TCP peer of a gRPC request, as the address its limits count against.
pub fn peer_of<T>(req: &tonic::Request<T>) -> Option<IpAddr> {
    req.remote_addr().map(|a| canonical(a.ip()))
}

/// The client's address of an HTTP request (the TCP peer from tonic's connection info).
pub fn of_http<B>(req: &http::Request<B>, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
        .map(|a| a.ip());
    let forwarded = req.headers().get(FORWARDED_FOR).and_then(|v| v.to_str().ok());
    client_ip(peer, forwarded, trusted)
}

/// The client's address of a gRPC request.
pub fn of_request<T>(req: &tonic::Request<T>, trusted: &TrustedProxies) -> Option<IpAddr> {
    let forwarded = req.metadata().get(FORWARDED_FOR).and_then(|v| v.to_str().ok());
    client_ip(req.remote_addr().map(|a| a.ip()), forwarded, trusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let none = TrustedProxies::none();
        assert_eq!(client_ip(Some(ip("203.0.113.7")), Some("1.1.1.1"), &none), Some(ip("203.0.113.7")));
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        // The client forged "6.6.6.6"; the load balancer 10.0.0.9 appended what it saw.
        let header = "6.6.6.6, 198.51.100.4, 10.0.0.9";
        assert_eq!(client_ip(Some(ip("127.0.0.1")), Some(header), &trusted), Some(ip("198.51.100.4")));
        assert_eq!(client_ip(Some(ip("::ffff:127.0.0.1")), Some("198.51.100.4"), &trusted), Some(ip("198.51.100.4")));
        // Nothing forwarded: the proxy itself is all we know.
        assert_eq!(client_ip(Some(ip("127.0.0.1")), None, &trusted), Some(ip("127.0.0.1")));
        // Garbage stops the walk at the last hop a trusted proxy vouched for.
        assert_eq!(client_ip(Some(ip("127.0.0.1")), Some("x, 10.0.0.9"), &trusted), Some(ip("10.0.0.9")));
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_itself() {
        assert_eq!(address_key(ip("2001:db8:1:2:ffff::9")), ip("2001:db8:1:2::"));
        assert_eq!(address_key(ip("::ffff:198.51.100.1")), ip("198.51.100.1"));
        assert_eq!(address_key(ip("198.51.100.1")), ip("198.51.100.1"));
    }

    #[test]
    fn the_last_hop_is_what_the_last_proxy_saw() {
        assert_eq!(last_hop(Some("6.6.6.6, 198.51.100.4")), Some(ip("198.51.100.4")));
        assert_eq!(last_hop(Some("::ffff:198.51.100.4")), Some(ip("198.51.100.4")));
        assert_eq!(last_hop(Some("198.51.100.4, garbage")), None, "not an address: not believed");
        assert_eq!(last_hop(None), None);
    }

    #[test]
    fn a_bad_entry_is_named() {
        assert!(TrustedProxies::parse(&["10.0.0.0/8", "nope"]).unwrap_err().contains("'nope'"));
    }
}
