//! What the benchmarks share: the timer and the conv shapes. (A folder, so that cargo does
//! not take it for a benchmark of its own.)

use std::time::Instant;

use ferrite_kernels::conv::ConvShape;

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

/// The distinct 3x3 convolutions (input channels, output channels, side) of VGG13.
#[allow(dead_code)]
pub const VGG13_CONVS: [(usize, usize, usize); 7] = [
    (1, 64, 48),
    (64, 64, 48),
    (64, 128, 24),
    (128, 128, 24),
    (128, 256, 12),
    (256, 256, 12),
    (256, 256, 6),
];

/// A 3x3, stride-1, padding-1 convolution, as every one of these networks has.
// (Each benchmark compiles this module on its own and uses part of it: hence the allows.)
#[allow(dead_code)]
pub fn same_3x3(batch: usize, cin: usize, cout: usize, side: usize) -> ConvShape {
    ConvShape {
        batch,
        cin,
        h: side,
        w: side,
        cout,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        padding: [1, 1],
    }
}

/// `n` deterministic values in [-1, 1]: timing needs no better.
#[allow(dead_code)]
pub fn values(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.731).sin()).collect()
}
