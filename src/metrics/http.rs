//! Request duration histograms by method and route, and the middleware that feeds them.
//!
//! The route is the pattern that matched (`/admin/keys/{key_id}`), never the path itself, so
//! the number of series is bounded by the routing table; requests that match no route share
//! the label [`UNMATCHED`]. Series are found in a fixed table of slots filled once each
//! (`OnceLock`, open addressing): after the first request of a route, recording is a hash, an
//! atomic load and two relaxed atomic additions, with no lock on any request.

use std::{
    fmt,
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
    web,
};
use prometheus_client::{
    encoding::{DescriptorEncoder, NoLabelSet},
    metrics::MetricType,
};

use crate::state::AppState;

/// The `route` label of requests that matched no route (unknown pages, unknown API paths).
pub const UNMATCHED: &str = "unmatched";

/// Bucket upper bounds in microseconds: from a cached verification (well under a
/// millisecond) to a slow page or a password hash under load.
const BUCKET_MICROS: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// Slots for (method, route) series: several times the routes × common methods of the
/// routing table, so probes stay short. Beyond it, requests go to the `other` series.
const SLOTS: usize = 1024;

/// The methods with a label of their own; any other is `OTHER` (a client chooses the method,
/// and must not be able to add series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// A histogram of atomics: a count per bucket (the last is `+Inf`) and the sum.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKET_MICROS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let micros = nanos / 1_000;
        let bucket = BUCKET_MICROS.iter().position(|bound| micros <= *bound).unwrap_or(BUCKET_MICROS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Per-bucket counts (not cumulative: the encoder adds them up), their total and the sum
    /// in seconds. The count is the buckets' total, so a scrape never sees them disagree.
    fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let buckets: Vec<(f64, u64)> = BUCKET_MICROS
            .iter()
            .map(|micros| *micros as f64 / 1e6)
            .chain([f64::INFINITY])
            .zip(&self.buckets)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        (buckets, count, self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9)
    }
}

#[derive(Debug)]
struct Series {
    method: &'static str,
    route: Box<str>,
    histogram: Histogram,
}

/// The request histograms of one instance.
pub struct RouteHistograms {
    slots: Box<[OnceLock<Series>]>,
    /// Requests of a (method, route) that found no free slot.
    other: Histogram,
}

impl Default for RouteHistograms {
    fn default() -> Self {
        Self { slots: (0..SLOTS).map(|_| OnceLock::new()).collect(), other: Histogram::default() }
    }
}

impl fmt::Debug for RouteHistograms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteHistograms")
            .field("series", &self.slots.iter().filter(|s| s.get().is_some()).count())
            .finish()
    }
}

/// FNV-1a: a few nanoseconds for a route pattern, and the slots need no protection from
/// chosen collisions (routes come from the routing table, not from clients).
fn slot_of(method: &str, route: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in method.bytes().chain([b' ']).chain(route.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % SLOTS as u64) as usize
}

impl RouteHistograms {
    /// Records a request of `method` on `route` (a route pattern or [`UNMATCHED`]).
    pub fn observe(&self, method: &Method, route: &str, elapsed: Duration) {
        self.series(method_label(method), route).observe(elapsed);
    }

    fn series(&self, method: &'static str, route: &str) -> &Histogram {
        let start = slot_of(method, route);
        for probe in 0..SLOTS {
            let slot = &self.slots[(start + probe) % SLOTS];
            // Filled once per (method, route) for the life of the process; afterwards an
            // atomic load. Two requests filling one slot at once: one wins, the other probes on.
            let series = slot.get_or_init(|| Series { method, route: route.into(), histogram: Histogram::default() });
            if series.method == method && *series.route == *route {
                return &series.histogram;
            }
        }
        &self.other
    }

    /// Writes `keyward_http_request_duration_seconds`.
    pub(crate) fn encode(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let mut family = encoder.encode_descriptor(
            "keyward_http_request_duration_seconds",
            "Time from receiving a request to its response, by method and matched route pattern.",
            None,
            MetricType::Histogram,
        )?;
        let mut series: Vec<(&str, &str, &Histogram)> =
            self.slots.iter().filter_map(OnceLock::get).map(|s| (s.method, &*s.route, &s.histogram)).collect();
        series.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
        if self.other.buckets.iter().any(|b| b.load(Ordering::Relaxed) > 0) {
            series.push(("OTHER", "other", &self.other));
        }
        for (method, route, histogram) in series {
            let (buckets, count, sum) = histogram.snapshot();
            family
                .encode_family(&[("method", method), ("route", route)])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

/// Middleware: times every request and records it under its matched route pattern.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let response = next.call(req).await?;
    let request = response.request();
    if let Some(state) = request.app_data::<web::Data<AppState>>() {
        // The pattern is known once routing is done: it is read from the response's request.
        let route = request.match_pattern();
        state.metrics.http.observe(request.method(), route.as_deref().unwrap_or(UNMATCHED), started.elapsed());
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_and_route_has_its_own_series() {
        let histograms = RouteHistograms::default();
        histograms.observe(&Method::GET, "/admin/keys/{key_id}", Duration::from_micros(300));
        histograms.observe(&Method::GET, "/admin/keys/{key_id}", Duration::from_millis(3));
        histograms.observe(&Method::POST, "/admin/keys/{key_id}", Duration::from_secs(30));
        histograms.observe(&Method::from_bytes(b"BREW").unwrap(), UNMATCHED, Duration::from_millis(1));
        let get = histograms.series("GET", "/admin/keys/{key_id}").snapshot();
        assert_eq!((get.1, get.0[0].1, get.0[3].1), (2, 1, 1));
        assert!((get.2 - 0.0033).abs() < 1e-9);
        let post = histograms.series("POST", "/admin/keys/{key_id}").snapshot();
        assert_eq!((post.1, post.0[BUCKET_MICROS.len()].1), (1, 1), "beyond the last bound: +Inf");
        assert_eq!(histograms.series("OTHER", UNMATCHED).snapshot().1, 1);
    }

    #[test]
    fn a_full_table_sends_new_series_to_other() {
        let histograms = RouteHistograms::default();
        for i in 0..SLOTS + 5 {
            histograms.observe(&Method::GET, &format!("/r{i}"), Duration::from_millis(1));
        }
        let other = histograms.other.snapshot();
        assert_eq!(other.1, 5);
    }
}
