//! Our kernels against burn's reference operations: same outputs, same gradients, through
//! burn's autodiff, on the layer shapes our networks use and on odd ones.

use burn::tensor::activation::relu;
use burn::tensor::module::{batch_norm_train, conv2d as burn_conv2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use ferrite_kernels::{conv2d, depthwise_conv2d, norm_train};

fn device() -> Device {
    Device::flex().autodiff()
}

fn random<const D: usize>(shape: [usize; D]) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device())
}

fn values<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.to_data().try_to_vec::<f32>().unwrap()
}

/// Largest difference relative to the largest magnitude of the reference.
fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tolerance * scale,
        "{what}: off by {worst} (scale {scale})"
    );
}

/// Runs `f` on fresh leaf tensors that require gradients and returns the output's values and
/// the gradients of `sum(output · weights)` for each input.
fn output_and_grads<const D: usize, const N: usize>(
    inputs: &[Tensor<D>; N],
    weights: &Tensor<4>,
    f: impl Fn(&[Tensor<D>; N]) -> Tensor<4>,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let leaves: [Tensor<D>; N] = inputs.clone().map(|t| t.detach().require_grad());
    let out = f(&leaves);
    let loss = (out.clone() * weights.clone()).sum();
    let grads = loss.backward();
    let g = leaves
        .iter()
        .map(|t| values(&t.grad(&grads).expect("input has a gradient")))
        .collect();
    (values(&out), g)
}

#[test]
fn conv2d_matches_burn_forward_and_gradients() {
    // (batch, cin, side, cout, kernel, stride, padding): our network's layers, a strided 1x1
    // (mini-Xception's shortcut), a strided 3x3, and a 2x2 map that batches many images.
    let cases = [
        (4, 1, 48, 16, 3, 1, 1),
        (4, 16, 24, 32, 3, 1, 1),
        (8, 96, 6, 192, 3, 1, 1),
        (3, 8, 11, 16, 1, 2, 0),
        (3, 5, 9, 7, 3, 2, 1),
        (40, 6, 2, 5, 3, 1, 1),
    ];
    for (n, cin, side, cout, k, stride, pad) in cases {
        let x = random([n, cin, side, side]);
        let w = random([cout, cin, k, k]);
        let out_side = (side + 2 * pad - k) / stride + 1;
        let r = random([n, cout, out_side, out_side]);
        let inputs = [x, w];
        let ours = output_and_grads(&inputs, &r, |t| {
            conv2d(t[0].clone(), t[1].clone(), [stride; 2], [pad; 2])
        });
        let burn = output_and_grads(&inputs, &r, |t| {
            burn_conv2d(
                t[0].clone(),
                t[1].clone(),
                None,
                ConvOptions::new([stride; 2], [pad; 2], [1, 1], 1),
            )
        });
        let case = format!("conv {n}x{cin}x{side} -> {cout}, k{k} s{stride} p{pad}");
        assert_close(&format!("{case} output"), &ours.0, &burn.0, 1e-5);
        assert_close(&format!("{case} dx"), &ours.1[0], &burn.1[0], 1e-5);
        assert_close(&format!("{case} dw"), &ours.1[1], &burn.1[1], 1e-5);
    }
}

#[test]
fn depthwise_conv2d_matches_burn_forward_and_gradients() {
    // (batch, channels, side, kernel, padding): mini-Xception's first and last separable
    // convs, an unpadded one, a 5x5 kernel on a map smaller than its padding reaches, and
    // a 1x1 kernel padded by 1 (left to burn: padding as large as the kernel).
    let cases = [
        (4, 8, 44, 3, 1),
        (8, 128, 6, 3, 1),
        (3, 5, 9, 3, 0),
        (2, 3, 2, 5, 2),
        (2, 3, 4, 1, 1),
    ];
    for (n, c, side, k, pad) in cases {
        let x = random([n, c, side, side]);
        let w = random([c, 1, k, k]);
        let out_side = side + 2 * pad + 1 - k;
        let r = random([n, c, out_side, out_side]);
        let inputs = [x, w];
        let ours = output_and_grads(&inputs, &r, |t| {
            depthwise_conv2d(t[0].clone(), t[1].clone(), [pad; 2])
        });
        let burn = output_and_grads(&inputs, &r, |t| {
            burn_conv2d(
                t[0].clone(),
                t[1].clone(),
                None,
                ConvOptions::new([1, 1], [pad; 2], [1, 1], c),
            )
        });
        let case = format!("depthwise {n}x{c}x{side}, k{k} p{pad}");
        assert_close(&format!("{case} output"), &ours.0, &burn.0, 1e-5);
        assert_close(&format!("{case} dx"), &ours.1[0], &burn.1[0], 1e-5);
        assert_close(&format!("{case} dw"), &ours.1[1], &burn.1[1], 1e-5);
    }
}

#[test]
fn norm_train_matches_burn_forward_statistics_and_gradients() {
    for (n, c, side) in [(8, 16, 12), (3, 5, 7), (64, 4, 1)] {
        for with_relu in [false, true] {
            let gamma = random([c]) + 1.0;
            let beta = random([c]);
            // Shift and scale the input so that the statistics are not trivially 0 and 1. A ReLU
            // input within rounding of 0 may fall on either side in the two implementations, and
            // its whole gradient with it, so redraw until none lies that close (most draws pass).
            let x = loop {
                let x = random([n, c, side, side]) * 3.0 + 1.5;
                let pre = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5).output;
                if !with_relu || values(&pre).iter().all(|v| v.abs() > 1e-4) {
                    break x;
                }
            };
            let r = random([n, c, side, side]);
            let ours = |t: &[Tensor<4>; 1], g: &Tensor<1>, b: &Tensor<1>| {
                norm_train(t[0].clone(), g.clone(), b.clone(), 1e-5, with_relu)
            };
            let theirs = |t: &[Tensor<4>; 1], g: &Tensor<1>, b: &Tensor<1>| {
                let r = batch_norm_train(t[0].clone(), g.clone(), b.clone(), 1e-5);
                let out = if with_relu { relu(r.output) } else { r.output };
                (out, r.mean, r.variance)
            };
            let case = format!("norm {n}x{c}x{side} relu={with_relu}");

            // Input gradient (gamma, beta held constant) ...
            let (o1, gx1) = output_and_grads(std::array::from_ref(&x), &r, |t| {
                ours(t, &gamma, &beta).output
            });
            let (o2, gx2) =
                output_and_grads(std::array::from_ref(&x), &r, |t| theirs(t, &gamma, &beta).0);
            assert_close(&format!("{case} output"), &o1, &o2, 1e-5);
            assert_close(&format!("{case} dx"), &gx1[0], &gx2[0], 1e-4);

            // ... the parameter gradients ...
            let param_grads = |use_ours: bool| {
                let (g, b) = (
                    gamma.clone().detach().require_grad(),
                    beta.clone().detach().require_grad(),
                );
                let out = if use_ours {
                    ours(std::array::from_ref(&x), &g, &b).output
                } else {
                    theirs(std::array::from_ref(&x), &g, &b).0
                };
                let grads = (out * r.clone()).sum().backward();
                (
                    values(&g.grad(&grads).unwrap()),
                    values(&b.grad(&grads).unwrap()),
                )
            };
            let (dg1, db1) = param_grads(true);
            let (dg2, db2) = param_grads(false);
            assert_close(&format!("{case} dgamma"), &dg1, &dg2, 1e-4);
            assert_close(&format!("{case} dbeta"), &db1, &db2, 1e-4);

            // ... and the statistics that feed the running averages.
            let a = ours(std::array::from_ref(&x), &gamma, &beta);
            let (_, m, v) = theirs(std::array::from_ref(&x), &gamma, &beta);
            assert_close(&format!("{case} mean"), &values(&a.mean), &values(&m), 1e-5);
            assert_close(
                &format!("{case} variance"),
                &values(&a.variance),
                &values(&v),
                1e-5,
            );
        }
    }
}

#[test]
fn kernels_also_run_without_autodiff_and_on_strided_inputs() {
    let plain = Device::flex();
    let x = Tensor::<4>::random([2, 3, 8, 9], Distribution::Normal(0.0, 1.0), &plain);
    // A permuted view: not contiguous in memory.
    let xt = x.clone().swap_dims(2, 3);
    let w = Tensor::<4>::random([4, 3, 3, 3], Distribution::Normal(0.0, 1.0), &plain);
    let ours = conv2d(xt.clone(), w.clone(), [1, 1], [1, 1]);
    let theirs = burn_conv2d(xt, w, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1));
    assert_eq!(ours.dims(), [2, 4, 9, 8]);
    assert_close("strided conv", &values(&ours), &values(&theirs), 1e-5);

    let gamma = Tensor::<1>::from_data(TensorData::from([1.0f32, 2.0, 0.5]), &plain);
    let beta = Tensor::<1>::from_data(TensorData::from([0.0f32, -1.0, 1.0]), &plain);
    let ours = norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5, true);
    let theirs = relu(batch_norm_train(x, gamma, beta, 1e-5).output);
    assert_close("plain norm", &values(&ours.output), &values(&theirs), 1e-5);
}

#[test]
fn max_pool_matches_burn_forward_and_gradient() {
    use burn::tensor::module::max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    use ferrite_kernels::max_pool2x2;
    for (n, c, h, w) in [(4, 16, 48, 48), (2, 3, 7, 5), (3, 192, 6, 6)] {
        let x = random([n, c, h, w]);
        let r = random([n, c, h / 2, w / 2]);
        let ours = output_and_grads(std::array::from_ref(&x), &r, |t| max_pool2x2(t[0].clone()));
        let burn = output_and_grads(&[x], &r, |t| {
            max_pool2d(t[0].clone(), MaxPoolOptions::new([2, 2]))
        });
        assert_eq!(ours.0, burn.0, "max pool {n}x{c}x{h}x{w} output");
        assert_eq!(ours.1[0], burn.1[0], "max pool {n}x{c}x{h}x{w} dx");
    }
}
