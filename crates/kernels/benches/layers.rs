//! Where a training step of the `ferrite` network spends its time, layer by layer: our kernels
//! beside burn's flex operations on the same shapes (batch 64, all cores).
//!
//! `cargo bench -p ferrite-kernels` prints milliseconds per call and GFLOP/s for the forward
//! pass and for the backward pass (both gradients) of every conv shape of the network, and
//! for batch norm + ReLU and 2x2 max pooling at each resolution, and for mini-Xception's
//! depthwise convolutions.

use burn::tensor::activation::relu;
use burn::tensor::module::{batch_norm_train, conv2d as burn_conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Distribution, Tensor};
use ferrite_kernels::{conv2d, depthwise_conv2d, max_pool2x2, norm_train};

const BATCH: usize = 64;

mod common;

/// Median milliseconds of `runs` calls of `f` after one warm-up call.
fn time_ms(runs: usize, f: impl FnMut()) -> f64 {
    common::median_seconds(1, runs, f) * 1e3
}

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// Forward alone, and forward + backward through autodiff, of `op` on an input of `shape`.
fn forward_backward(shape: [usize; 4], op: &dyn Fn(Tensor<4>) -> Tensor<4>) -> (f64, f64) {
    let plain = Device::flex();
    let ad = plain.clone().autodiff();
    let x = random(shape, &plain);
    let fwd = time_ms(5, || {
        let _ = op(x.clone()).into_data();
    });
    let x = random(shape, &ad).require_grad();
    // A dense upstream gradient, as in a network (`y.sum()` would hand the op a broadcast).
    let r = random(op(random(shape, &plain)).dims(), &ad);
    let both = time_ms(5, || {
        let y = op(x.clone());
        let grads = (y * r.clone()).sum().backward();
        let _ = x.grad(&grads).unwrap().into_data();
    });
    (fwd, both)
}

fn main() {
    println!("batch {BATCH}; ms per call (median of 5); GFLOP/s = 2·MACs / time");
    println!();
    println!(
        "| conv | MACs | fwd ours | fwd burn | fwd+bwd ours | fwd+bwd burn | fwd+bwd GFLOP/s ours | burn |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (cin, cout, side) in common::FERRITE_CONVS {
        let plain = Device::flex();
        let w = random([cout, cin, 3, 3], &plain);
        let macs = (BATCH * cout * side * side * cin * 9) as f64;
        let wa = w.clone();
        let ours = forward_backward([BATCH, cin, side, side], &move |x| {
            let w = wa.clone().to_device(&x.device());
            conv2d(x, w, [1, 1], [1, 1])
        });
        let burn = forward_backward([BATCH, cin, side, side], &move |x| {
            let w = w.clone().to_device(&x.device());
            burn_conv2d(x, w, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1))
        });
        // fwd + bwd of an input that needs its gradient: 3 products of the forward's size.
        let gflops = |ms: f64| 3.0 * 2.0 * macs / ms / 1e6;
        println!(
            "| {cin}→{cout} {side}x{side} | {:.0} M | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            macs / 1e6 / BATCH as f64,
            ours.0,
            burn.0,
            ours.1,
            burn.1,
            gflops(ours.1),
            gflops(burn.1)
        );
    }
    println!();
    println!("| op | shape | fwd ours | fwd burn | fwd+bwd ours | fwd+bwd burn |");
    println!("|---|---|---:|---:|---:|---:|");
    for (c, side) in [(16, 48), (32, 24), (96, 12), (192, 6)] {
        let shape = [BATCH, c, side, side];
        let plain = Device::flex();
        let (g, b) = (random([c], &plain), random([c], &plain));
        let (g2, b2) = (g.clone(), b.clone());
        let ours = forward_backward(shape, &move |x| {
            let d = x.device();
            norm_train(
                x,
                g.clone().to_device(&d),
                b.clone().to_device(&d),
                1e-5,
                true,
            )
            .output
        });
        let burn = forward_backward(shape, &move |x| {
            let d = x.device();
            relu(
                batch_norm_train(x, g2.clone().to_device(&d), b2.clone().to_device(&d), 1e-5)
                    .output,
            )
        });
        println!(
            "| batch norm + ReLU | {c}x{side}x{side} | {:.1} | {:.1} | {:.1} | {:.1} |",
            ours.0, burn.0, ours.1, burn.1
        );
        let ours = forward_backward(shape, &|x| max_pool2x2(x));
        let burn = forward_backward(shape, &|x| max_pool2d(x, MaxPoolOptions::new([2, 2])));
        println!(
            "| max pool 2x2 | {c}x{side}x{side} | {:.1} | {:.1} | {:.1} | {:.1} |",
            ours.0, burn.0, ours.1, burn.1
        );
    }
    // mini-Xception's depthwise 3x3 convs.
    for (c, side) in [(8, 44), (16, 44), (32, 22), (64, 11), (128, 6)] {
        let w = random([c, 1, 3, 3], &Device::flex());
        let wa = w.clone();
        let ours = forward_backward([BATCH, c, side, side], &move |x| {
            depthwise_conv2d(x.clone(), wa.clone().to_device(&x.device()), [1, 1])
        });
        let burn = forward_backward([BATCH, c, side, side], &move |x| {
            let w = w.clone().to_device(&x.device());
            burn_conv2d(x, w, None, ConvOptions::new([1, 1], [1, 1], [1, 1], c))
        });
        println!(
            "| depthwise conv 3x3 | {c}x{side}x{side} | {:.1} | {:.1} | {:.1} | {:.1} |",
            ours.0, burn.0, ours.1, burn.1
        );
    }
}
