//! What the benchmarks share: the timer and the conv shapes. (A folder, so that cargo does
//! not take it for a benchmark of its own.)

use std::time::Instant;

/// Median seconds of `runs` calls of `f`, after `warmup` untimed calls.
pub fn median_seconds(warmup: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    (0..warmup).for_each(|_| f());
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// The 3x3 convolutions (input channels, output channels, side) of the `ferrite` network.
pub const FERRITE_CONVS: [(usize, usize, usize); 8] = [
    (1, 16, 48),
    (16, 16, 48),
    (16, 32, 24),
    (32, 32, 24),
    (32, 96, 12),
    (96, 96, 12),
    (96, 192, 6),
    (192, 192, 6),
];
