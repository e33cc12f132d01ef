//! Each 3x3 convolution of `ferrite` and VGG13 split into its three parts (forward, input
//! gradient, weight gradient), timed on our kernels alone, to set beside
//! `bench/pytorch_layers.py`, which times the same parts in PyTorch.
//!
//! `cargo bench --workspace --bench conv_parts` prints milliseconds per call (batch 64, all
//! cores, median of 7) and the forward pass's GFLOP/s.

use ferrite_kernels::conv::{ConvShape, backward, forward};

mod common;

const BATCH: usize = 64;

/// VGG13's 3x3 convolutions after its first (input channels, output channels, side).
const VGG13_CONVS: [(usize, usize, usize); 6] = [
    (64, 64, 48),
    (64, 128, 24),
    (128, 128, 24),
    (128, 256, 12),
    (256, 256, 12),
    (256, 256, 6),
];

/// Values in [-1, 1) from a fixed linear congruential sequence: timing needs no better.
fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn main() {
    println!("batch {BATCH}; ms per call (median of 7)");
    println!();
    println!("| conv | fwd | dx | dw | fwd GFLOP/s |");
    println!("|---|---:|---:|---:|---:|");
    let shapes = common::FERRITE_CONVS[1..].iter().chain(&VGG13_CONVS);
    for &(cin, cout, side) in shapes {
        let s = ConvShape {
            batch: BATCH,
            cin,
            h: side,
            w: side,
            cout,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            padding: [1, 1],
        };
        let x = values(BATCH * cin * side * side, 1);
        let w = values(cout * cin * 9, 2);
        let g = values(BATCH * cout * side * side, 3);
        let ms = |f: &mut dyn FnMut()| common::median_seconds(1, 7, f) * 1e3;
        let fwd = ms(&mut || drop(forward(&s, &x, &w)));
        // For 3x3, stride 1, padding 1 the input gradient is the forward pass of the output
        // gradient through the transposed convolution (kernels turned, channels swapped),
        // which is what `backward` runs; timing that pass alone isolates it.
        let transposed = ConvShape {
            cin: cout,
            cout: cin,
            ..s
        };
        let dx = ms(&mut || drop(forward(&transposed, &g, &w)));
        let dw = ms(&mut || drop(backward(&s, &x, &w, &g, false)));
        let macs = (BATCH * cout * side * side * cin * 9) as f64;
        println!(
            "| {cin}→{cout} at {side}x{side} | {fwd:.2} | {dx:.2} | {dw:.2} | {:.0} |",
            2.0 * macs / fwd / 1e6
        );
    }
}
