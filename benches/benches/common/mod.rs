//! Settings every criterion micro-benchmark here shares.

use criterion::Criterion;
use std::time::Duration;

/// Short runs, so `cargo bench` stays at a couple of minutes on 2 cores.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}
