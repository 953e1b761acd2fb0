//! The client's IP address, taken from the connection (or, when the operator says a trusted
//! proxy sets it, from `Forwarded` / `X-Forwarded-For`).

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
            req.connection_info().realip_remote_addr().and_then(parse_host)
        } else {
            req.peer_addr().map(|a| a.ip())
        };
        Self(addr)
    }

    pub fn network(self) -> Option<ipnetwork::IpNetwork> {
        self.0.map(ipnetwork::IpNetwork::from)
    }
}

/// `realip_remote_addr` may carry a port (`1.2.3.4:5678`, `[::1]:80`) or not.
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
    use super::parse_host;

    #[test]
    fn forwarded_addresses_with_and_without_ports_parse() {
        assert_eq!(parse_host("10.0.0.1").unwrap().to_string(), "10.0.0.1");
        assert_eq!(parse_host("10.0.0.1:443").unwrap().to_string(), "10.0.0.1");
        assert_eq!(parse_host("[::1]:80").unwrap().to_string(), "::1");
        assert!(parse_host("not-an-ip").is_none());
    }
}
