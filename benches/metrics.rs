//! The cost of counting on the request path: what the metrics add to each request (one
//! route histogram observation, one verification counter, one cache lookup count), in
//! nanoseconds per request, on one thread and on two threads hitting the same series (the
//! verification route under load). Run with `cargo bench --bench metrics` (release build).
//! It does not include actix's own `match_pattern` (one short string per request).

use std::{hint::black_box, sync::Arc, time::Duration, time::Instant};

use actix_web::http::Method;
use keyward::{
    keys::verifier::Code,
    metrics::{Metrics, Verification},
};

const PER_THREAD: u64 = 5_000_000;

fn run(metrics: &Metrics) -> Duration {
    let started = Instant::now();
    for i in 0..PER_THREAD {
        metrics.http.observe(black_box(&Method::POST), black_box("/api/v1/verify"), Duration::from_nanos(i % 900_000));
        metrics.verification(black_box(Verification::Answered(Code::Valid)));
    }
    started.elapsed()
}

fn main() {
    let metrics = Arc::new(Metrics::default());
    run(&metrics); // warm-up: the series exists from the first request on
    let one = run(&metrics);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let metrics = Arc::clone(&metrics);
            std::thread::spawn(move || run(&metrics))
        })
        .collect();
    let two: Vec<Duration> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let per = |d: Duration| d.as_nanos() as f64 / PER_THREAD as f64;
    println!("metrics per request, 1 thread:  {:.1} ns", per(one));
    println!("metrics per request, 2 threads: {:.1} ns / {:.1} ns (same series, contended)", per(two[0]), per(two[1]));
}
