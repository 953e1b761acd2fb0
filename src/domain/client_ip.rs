//! The client's IP address, taken from the connection, or, when the operator says a trusted
//! proxy sits in front (`KEYWARD_TRUST_FORWARDED`), from the address that proxy appended:
//! the *rightmost* entry of `X-Forwarded-For` (or the last `for=` of `Forwarded`). Entries
//! further left come from the client and can say anything.

use std::{
    future::{Ready, ready},
    net::IpAddr,
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

/// Whether forwarded headers are trusted; stored as app data at start-up.
#[derive(Debug, Clone, Copy)]
pub struct TrustForwarded(pub bool);

/// The address requests are attributed to (audit log, throttling, IP allow-lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    pub fn of(req: &HttpRequest) -> Self {
        let trust = req.app_data::<web::Data<TrustForwarded>>().is_some_and(|t| t.0);
        let addr = if trust {
            forwarded_by_proxy(req).or_else(|| req.peer_addr().map(|a| a.ip()))
        } else {
            req.peer_addr().map(|a| a.ip())
        };
        Self(addr)
    }

    pub fn network(self) -> Option<ipnetwork::IpNetwork> {
        self.0.map(ipnetwork::IpNetwork::from)
    }
}

/// The address the nearest (trusted) proxy saw: the last `X-Forwarded-For` entry, else the
/// last `for=` of `Forwarded`.
fn forwarded_by_proxy(req: &HttpRequest) -> Option<IpAddr> {
    let headers = req.headers();
    if let Some(value) = headers.get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).last() {
        return value.rsplit(',').next().map(str::trim).and_then(parse_host);
    }
    let forwarded = headers.get_all("forwarded").filter_map(|v| v.to_str().ok()).last()?;
    let last = forwarded.rsplit(',').next()?;
    last.split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case("for"))
        .and_then(|(_, value)| parse_host(value.trim_matches('"')))
}

/// Forwarded addresses may carry a port (`1.2.3.4:5678`, `[::1]:80`) or not.
fn parse_host(value: &str) -> Option<IpAddr> {
    if let Ok(ip) = value.parse() {
        return Some(ip);
    }
    if let Ok(socket) = value.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    value.trim_start_matches('[').split(']').next().and_then(|v| v.parse().ok())
}

impl FromRequest for ClientIp {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxys_own_entry_is_the_rightmost() {
        use actix_web::test::TestRequest;
        let req = TestRequest::default()
            .insert_header(("X-Forwarded-For", "6.6.6.6, 203.0.113.9"))
            .app_data(web::Data::new(TrustForwarded(true)))
            .to_http_request();
        assert_eq!(ClientIp::of(&req).0.unwrap().to_string(), "203.0.113.9", "not the client-supplied 6.6.6.6");
        let req = TestRequest::default()
            .insert_header(("Forwarded", "for=6.6.6.6, for=\"[2001:db8::1]:4711\""))
            .app_data(web::Data::new(TrustForwarded(true)))
            .to_http_request();
        assert_eq!(ClientIp::of(&req).0.unwrap().to_string(), "2001:db8::1");
        let untrusted = TestRequest::default().insert_header(("X-Forwarded-For", "6.6.6.6")).to_http_request();
        assert_ne!(ClientIp::of(&untrusted).0.map(|ip| ip.to_string()).as_deref(), Some("6.6.6.6"));
    }

    #[test]
    fn forwarded_addresses_with_and_without_ports_parse() {
        assert_eq!(parse_host("10.0.0.1").unwrap().to_string(), "10.0.0.1");
        assert_eq!(parse_host("10.0.0.1:443").unwrap().to_string(), "10.0.0.1");
        assert_eq!(parse_host("[::1]:80").unwrap().to_string(), "::1");
        assert!(parse_host("not-an-ip").is_none());
    }
}
