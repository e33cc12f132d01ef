//! Where one face's inference (batch 1) spends its time: every 3x3 conv shape of the `ferrite`
//! and `vgg13` networks, run through the fused inference kernel (conv → scale/shift → ReLU)
//! on all cores.
//!
//! `cargo bench -p ferrite-kernels --bench latency` prints microseconds per call and GFLOP/s.
//! Batch-1 latency is the sum of these small multiplies, so how a layer is split across
//! the cores matters more than at batch 64.

use ferrite_kernels::conv::{Epilogue, forward_with};

mod common;

fn main() {
    println!(
        "batch 1, {} threads; µs per call (median of 50)",
        rayon::current_num_threads()
    );
    println!();
    println!("| network | conv | MACs | µs | GFLOP/s |");
    println!("|---|---|---:|---:|---:|");
    for (net, shapes) in [
        ("ferrite", &common::FERRITE_CONVS[..]),
        ("vgg13", &common::VGG13_CONVS[..]),
    ] {
        for &(cin, cout, side) in shapes {
            let s = common::same_3x3(1, cin, cout, side);
            let x = common::values(cin * side * side);
            let w = common::values(s.weight_len());
            let shift = common::values(cout);
            let epilogue = Epilogue {
                scale: None,
                shift: Some(&shift),
                relu: true,
            };
            let us = common::median_seconds(3, 50, || {
                std::hint::black_box(forward_with(&s, &x, &w, &epilogue));
            }) * 1e6;
            let macs = (cout * side * side * cin * 9) as f64;
            println!(
                "| {net} | {cin}→{cout} {side}x{side} | {:.1} M | {us:.0} | {:.1} |",
                macs / 1e6,
                2.0 * macs / us / 1e3
            );
        }
    }
}
