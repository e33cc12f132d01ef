//! Each 3x3 convolution of `ferrite` and VGG13 split into its three parts (forward, input
//! gradient, weight gradient), timed on our kernels alone, to set beside
//! `bench/pytorch_layers.py`, which times the same parts in PyTorch.
//!
//! `cargo bench --workspace --bench conv_parts` prints milliseconds per call (batch 64, all
//! cores, median of 7) and the forward pass's GFLOP/s; `-- 192→192` (any part of a row's
//! name) times only the rows that match, for a profile of one shape.

use ferrite_kernels::conv::{ConvShape, backward, forward};

mod common;

const BATCH: usize = 64;

fn main() {
    // `cargo bench` passes `--bench` itself; the other arguments filter the rows.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    println!("batch {BATCH}; ms per call (median of 7)");
    println!();
    println!("| conv | fwd | dx | dw | fwd GFLOP/s |");
    println!("|---|---:|---:|---:|---:|");
    let shapes = common::FERRITE_CONVS.iter().chain(&common::VGG13_CONVS);
    for &(cin, cout, side) in shapes {
        let name = format!("{cin}→{cout} at {side}x{side}");
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let s = common::same_3x3(BATCH, cin, cout, side);
        let x = common::values(BATCH * cin * side * side);
        let w = common::values(cout * cin * 9);
        let g = common::values(BATCH * cout * side * side);
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
        // A network's first layer (one input channel) has no input gradient to compute.
        let dx = if cin == 1 {
            "–".to_string()
        } else {
            format!("{:.2}", ms(&mut || drop(forward(&transposed, &g, &w))))
        };
        let dw = ms(&mut || drop(backward(&s, &x, &w, &g, false)));
        let macs = (BATCH * cout * side * side * cin * 9) as f64;
        println!(
            "| {name} | {fwd:.2} | {dx} | {dw:.2} | {:.0} |",
            2.0 * macs / fwd / 1e6
        );
    }
}
