//! The client's IP address, taken from the connection, or, when the operator names the
//! header a trusted proxy sets (`KEYWARD_TRUST_FORWARDED`), from the address that proxy
//! appended: the *rightmost* entry of `X-Forwarded-For`, or the last `for=` of `Forwarded`.
//! Entries further left, and the header the proxy does not set, come from the client and can
//! say anything, so only the one named header is read.

use std::{
    future::{Ready, ready},
    net::IpAddr,
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

/// Which forwarded header, if any, a trusted proxy sets; stored as app data at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustForwarded {
    /// No proxy: the connection's address.
    No,
    /// The proxy appends to `X-Forwarded-For`.
    XForwardedFor,
    /// The proxy appends to `Forwarded` (RFC 7239).
    Forwarded,
}

impl TrustForwarded {
    /// `KEYWARD_TRUST_FORWARDED`: `false`, `x-forwarded-for` or `forwarded`. A bare `true`
    /// is refused: trusting a header the proxy does not set lets clients forge it.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "0" | "false" | "no" | "off" => Some(Self::No),
            "x-forwarded-for" => Some(Self::XForwardedFor),
            "forwarded" => Some(Self::Forwarded),
            _ => None,
        }
    }
}

/// The address requests are attributed to (audit log, throttling, IP allow-lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    pub fn of(req: &HttpRequest) -> Self {
        let trust = req.app_data::<web::Data<TrustForwarded>>().map_or(TrustForwarded::No, |t| *t.get_ref());
        let peer = || req.peer_addr().map(|a| a.ip());
        // `None`: the header is absent (a request that did not come through the proxy).
        // `Some(None)`: the proxy's entry cannot be read, so the address is unknown (never
        // the proxy's own, which allow-lists of internal ranges might accept).
        let forwarded = match trust {
            TrustForwarded::No => return Self(peer()),
            TrustForwarded::XForwardedFor => last_entry(req, "x-forwarded-for").map(|entry| entry.and_then(parse_host)),
            TrustForwarded::Forwarded => last_entry(req, "forwarded").map(|entry| entry.and_then(forwarded_for)),
        };
        Self(forwarded.unwrap_or_else(peer))
    }

    pub fn network(self) -> Option<ipnetwork::IpNetwork> {
        self.0.map(ipnetwork::IpNetwork::from)
    }
}

/// The last comma-separated entry of the last `name` header (the one the nearest proxy
/// appended), read from its raw bytes: `None` if there is no such header, `Some(None)` if its
/// last entry is not text.
fn last_entry<'a>(req: &'a HttpRequest, name: &str) -> Option<Option<&'a str>> {
    let value = req.headers().get_all(name).last()?;
    let entry = value.as_bytes().rsplit(|b| *b == b',').next().unwrap_or_default();
    Some(std::str::from_utf8(entry).ok().map(str::trim))
}

/// The address of a `Forwarded` element's `for=` parameter.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element
        .split(';')
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
    fn only_the_named_header_counts_and_its_rightmost_entry() {
        use actix_web::test::TestRequest;
        let request = |trust: TrustForwarded| {
            TestRequest::default()
                .insert_header(("X-Forwarded-For", "6.6.6.6, 203.0.113.9"))
                .insert_header(("Forwarded", "for=7.7.7.7, for=\"[2001:db8::1]:4711\""))
                .app_data(web::Data::new(trust))
                .to_http_request()
        };
        let xff = ClientIp::of(&request(TrustForwarded::XForwardedFor)).0.unwrap().to_string();
        assert_eq!(xff, "203.0.113.9", "not the client-supplied 6.6.6.6, nor the Forwarded header");
        let forwarded = ClientIp::of(&request(TrustForwarded::Forwarded)).0.unwrap().to_string();
        assert_eq!(forwarded, "2001:db8::1", "not the client-supplied X-Forwarded-For");
        let untrusted = ClientIp::of(&request(TrustForwarded::No)).0.map(|ip| ip.to_string());
        assert!(untrusted.as_deref() != Some("203.0.113.9") && untrusted.as_deref() != Some("2001:db8::1"));
    }

    #[test]
    fn an_unreadable_entry_leaves_the_address_unknown_not_the_proxys() {
        use actix_web::{http::header::HeaderValue, test::TestRequest};
        let req = TestRequest::default()
            .insert_header(("X-Forwarded-For", HeaderValue::from_bytes(b"1.2.3.4, \x80").unwrap()))
            .peer_addr("10.0.0.5:40000".parse().unwrap())
            .app_data(web::Data::new(TrustForwarded::XForwardedFor))
            .to_http_request();
        assert_eq!(ClientIp::of(&req).0, None);
        let direct = TestRequest::default()
            .peer_addr("10.0.0.5:40000".parse().unwrap())
            .app_data(web::Data::new(TrustForwarded::XForwardedFor))
            .to_http_request();
        assert_eq!(ClientIp::of(&direct).0.unwrap().to_string(), "10.0.0.5", "no header: the connection's address");
    }

    #[test]
    fn the_setting_names_the_header() {
        assert_eq!(TrustForwarded::parse("true"), None, "which header?");
        assert_eq!(TrustForwarded::parse("X-Forwarded-For"), Some(TrustForwarded::XForwardedFor));
        assert_eq!(TrustForwarded::parse("forwarded"), Some(TrustForwarded::Forwarded));
        assert_eq!(TrustForwarded::parse("false"), Some(TrustForwarded::No));
        assert_eq!(TrustForwarded::parse("both"), None);
    }

    #[test]
    fn forwarded_addresses_with_and_without_ports_parse() {
        assert_eq!(parse_host("10.0.0.1").unwrap().to_string(), "10.0.0.1");
        assert_eq!(parse_host("10.0.0.1:443").unwrap().to_string(), "10.0.0.1");
        assert_eq!(parse_host("[::1]:80").unwrap().to_string(), "::1");
        assert!(parse_host("not-an-ip").is_none());
    }
}
