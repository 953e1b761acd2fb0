//! What the benchmarks share: starting the application on a private cluster's database with
//! keys to verify (`app`), and a signed-in browser session with the server's own timing of
//! each response (`http`).

pub mod app;
pub mod http;
