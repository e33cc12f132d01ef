//! ferrite's own CPU kernels for the operations that dominate training our networks:
//! convolution (forward and both gradients as im2col + matrix multiply in NCHW, and for 3x3
//! convolutions on CPUs with AVX2 or AVX-512 direct and Winograd kernels: `direct`,
//! `direct_grad`, `winograd`), the backward pass of depthwise convolution, batch norm with
//! batch statistics fused with the ReLU after it, and 2x2 max pooling. See
//! `docs/performance.md` for where burn's generic versions spend their time and what these
//! save.
//!
//! The functions here take ordinary burn tensors. On the CPU (burn's `flex` backend, with or
//! without autodiff) they run our kernels; on any other device they fall back to burn's own
//! operations, so a network written with them runs everywhere. [`use_burn_ops`] switches the
//! fallback on everywhere, to measure or check the kernels against burn.

/// Defines `fn $name($args) -> $ret { $body }` so that its plain loops are compiled once per
/// SIMD level and vectorise with the CPU's widest registers (the crate itself is built for
/// baseline x86-64, SSE2): the body is an `#[inline(always)]` inner function, wrapped in one
/// function per level with that level's target features, and the level detected at run time
/// ([`simd::level`]) picks the wrapper. Without a level, and off x86-64, the body runs as
/// compiled for the baseline CPU.
///
/// Only what inlines into the body gets the level's instructions: plain loops, slices'
/// iterators, `#[inline(always)]` helpers. A call that stays a call (an iterator's
/// `map(..).sum()` became one to `Map::fold`) runs as compiled for the baseline CPU; check
/// the wrappers' instructions (`objdump -d`, zmm/ymm registers) after changing a body.
macro_rules! compiled_for_level {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn loops($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            fn dispatch($($arg: $ty),*) $(-> $ret)? {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    loops($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    loops($($arg),*)
                }
                match $crate::simd::level() {
                    // SAFETY: each runs only where the CPU has its instructions.
                    Some($crate::simd::Simd::Avx512) => unsafe { avx512($($arg),*) },
                    Some($crate::simd::Simd::Avx2) => unsafe { avx2($($arg),*) },
                    None => loops($($arg),*),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            fn dispatch($($arg: $ty),*) $(-> $ret)? {
                loops($($arg),*)
            }
            dispatch($($arg),*)
        }
    };
}
pub(crate) use compiled_for_level;

mod backend;
pub mod conv;
pub mod depthwise;
#[cfg(target_arch = "x86_64")]
mod direct;
#[cfg(target_arch = "x86_64")]
mod direct_grad;
mod gemm;
pub mod nhwc;
pub mod norm;
pub mod pool;
#[cfg(target_arch = "x86_64")]
mod simd;
#[cfg(target_arch = "x86_64")]
mod winograd;

use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::activation::relu;
use burn::tensor::module::{batch_norm_train, conv2d as burn_conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};

use std::sync::atomic::{AtomicBool, Ordering};

use backend::KernelOps;

static BURN_OPS: AtomicBool = AtomicBool::new(false);

/// From now on, run burn's own operations instead of our kernels (`false` switches back).
/// For benchmarks and equivalence tests; it is process-wide.
pub fn use_burn_ops(on: bool) {
    BURN_OPS.store(on, Ordering::Relaxed);
}

/// Whether [`use_burn_ops`] is on.
pub fn burn_ops() -> bool {
    BURN_OPS.load(Ordering::Relaxed)
}

/// Whether our kernels serve `device`: burn's CPU backend (possibly under autodiff), and not
/// switched off by [`use_burn_ops`]. On a GPU burn's own operations run.
pub fn ours(device: &Device) -> bool {
    if burn_ops() {
        return false;
    }
    match device.as_dispatch() {
        DispatchDevice::Flex(_) => true,
        DispatchDevice::Autodiff(inner) => matches!(inner.clone().inner(), DispatchDevice::Flex(_)),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// 2-D convolution without bias: `x [n, cin, h, w]`, `weight [cout, cin, kh, kw]`, one group,
/// dilation 1, symmetric `padding` per side.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    if !ours(&x.device()) {
        return burn_conv2d(
            x,
            weight,
            None,
            ConvOptions::new(stride, padding, [1, 1], 1),
        );
    }
    let out = <Dispatch as KernelOps>::ferrite_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        padding,
    );
    Tensor::from_dispatch(out)
}

/// Depthwise 2-D convolution without bias, stride 1, dilation 1: `x [n, c, h, w]`, `weight
/// [c, 1, kh, kw]` (one filter per channel, as burn stores a conv with `groups = c`),
/// symmetric `padding` per side. Padding as large as the kernel is left to burn (our
/// input gradient is a convolution with `kernel - 1 - padding` of padding).
pub fn depthwise_conv2d(x: Tensor<4>, weight: Tensor<4>, padding: [usize; 2]) -> Tensor<4> {
    let [channels, _, kh, kw] = weight.dims();
    if !ours(&x.device()) || padding[0] >= kh || padding[1] >= kw {
        return burn_conv2d(
            x,
            weight,
            None,
            ConvOptions::new([1, 1], padding, [1, 1], channels),
        );
    }
    let out = <Dispatch as KernelOps>::ferrite_depthwise_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        padding,
    );
    Tensor::from_dispatch(out)
}

/// Inference: `conv2d(x, weight) · scale + shift` per output channel, then ReLU when
/// `relu_after`, in one pass over the output; `scale: None` means 1 (a plain bias). Batch
/// norm at inference is such a scale and shift, so conv → batch norm → ReLU becomes one
/// kernel, with no per-call work on the weights. Not differentiable: on an autodiff device it
/// uses burn's operations.
pub fn conv2d_affine(
    x: Tensor<4>,
    weight: Tensor<4>,
    scale: Option<Tensor<1>>,
    shift: Tensor<1>,
    stride: [usize; 2],
    padding: [usize; 2],
    relu_after: bool,
) -> Tensor<4> {
    let device = x.device();
    if !ours(&device) || device.is_autodiff() {
        let [cout, ..] = weight.dims();
        let mut y = burn_conv2d(
            x,
            weight,
            None,
            ConvOptions::new(stride, padding, [1, 1], 1),
        );
        if let Some(scale) = scale {
            y = y * scale.reshape([1, cout, 1, 1]);
        }
        let y = y + shift.reshape([1, cout, 1, 1]);
        return if relu_after { relu(y) } else { y };
    }
    let scale = scale.unwrap_or_else(|| Tensor::<1>::empty([0], &device));
    let out = <Dispatch as KernelOps>::ferrite_conv2d_affine(
        x.into_dispatch(),
        weight.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
        stride,
        padding,
        relu_after,
    );
    Tensor::from_dispatch(out)
}

/// Batch norm's training-mode result.
pub struct NormOutput {
    pub output: Tensor<4>,
    /// The batch mean per channel.
    pub mean: Tensor<1>,
    /// The biased batch variance per channel (what burn feeds its running variance).
    pub variance: Tensor<1>,
}

/// Batch norm with the batch's statistics over `[n, c, h, w]`, followed by ReLU when `relu`.
pub fn norm_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu_after: bool,
) -> NormOutput {
    if !ours(&x.device()) {
        let r = batch_norm_train(x, gamma, beta, epsilon);
        let output = if relu_after { relu(r.output) } else { r.output };
        return NormOutput {
            output,
            mean: r.mean,
            variance: r.variance,
        };
    }
    let r = <Dispatch as KernelOps>::ferrite_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        relu_after,
    );
    NormOutput {
        output: Tensor::from_dispatch(r.output),
        mean: Tensor::from_dispatch(r.mean),
        variance: Tensor::from_dispatch(r.variance),
    }
}

/// 2x2 max pooling with stride 2, no padding, floor mode (odd last rows and columns dropped).
pub fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    if !ours(&x.device()) {
        return max_pool2d(x, MaxPoolOptions::new([2, 2]));
    }
    Tensor::from_dispatch(<Dispatch as KernelOps>::ferrite_max_pool2x2(
        x.into_dispatch(),
    ))
}
