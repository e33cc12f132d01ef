//! Batch norm in training mode (batch statistics), optionally followed by ReLU, on contiguous
//! NCHW f32 data: forward and backward in two passes each.
//!
//! Why our own: burn's generic `batch_norm_train` and its backward are built from tensor
//! operations (swap dims, reshape, mean, sub, mul, ...), each a full pass over the
//! activation, several of them copies; and the ReLU after it is two more passes. Here the
//! forward reads the input twice (statistics) and writes the output once; the backward
//! reads twice and writes once. The semantics are burn's: the biased batch variance
//! normalises and is returned for the running statistics.

use rayon::prelude::*;

/// Sizes: `batch` images of `channels` planes of `spatial` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormShape {
    pub batch: usize,
    pub channels: usize,
    pub spatial: usize,
}

impl NormShape {
    fn len(&self) -> usize {
        self.batch * self.channels * self.spatial
    }

    /// Values per image.
    fn image_len(&self) -> usize {
        self.channels * self.spatial
    }

    /// Values per channel.
    fn count(&self) -> f64 {
        (self.batch * self.spatial) as f64
    }

    /// The planes of channel `c`.
    fn planes<'a>(&self, x: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (s, step) = (self.spatial, self.channels * self.spatial);
        (0..self.batch).map(move |b| &x[b * step + c * s..][..s])
    }
}

/// What the forward returns: the output and the batch statistics per channel.
pub struct Forward {
    pub output: Vec<f32>,
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
}

/// What the backward returns.
pub struct Backward {
    pub x: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// `y = (x − mean) / sqrt(var + eps) · gamma + beta`, then `max(y, 0)` when `relu`.
pub fn forward(
    s: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    relu: bool,
) -> Forward {
    check(s, x, gamma, beta);
    let (mean, variance): (Vec<f32>, Vec<f32>) = (0..s.channels)
        .into_par_iter()
        .map(|c| channel_stats(s, x, c))
        .unzip();
    let (scale, shift) = affine(&mean, &variance, gamma, beta, eps);
    let mut output = vec![0.0f32; x.len()];
    output
        .par_chunks_mut(s.image_len())
        .zip(x.par_chunks(s.image_len()))
        .for_each(|(y, x)| normalise_image(s, x, &scale, &shift, relu, y));
    Forward {
        output,
        mean,
        variance,
    }
}

/// Gradients of [`forward`] with respect to `x`, `gamma` and `beta`, given the output
/// gradient `g` and the statistics the forward returned.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    s: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    variance: &[f32],
    eps: f64,
    relu: bool,
    g: &[f32],
) -> Backward {
    check(s, x, gamma, beta);
    assert_eq!(g.len(), s.len(), "batch norm backward: gradient size");
    let (scale, shift) = affine(mean, variance, gamma, beta, eps);
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|v| (1.0 / (*v as f64 + eps).sqrt()) as f32)
        .collect();
    let per_channel = Channels {
        scale: &scale,
        shift: &shift,
        mean,
        inv_std: &inv_std,
        relu,
    };
    let (beta_grad, gamma_grad): (Vec<f32>, Vec<f32>) = (0..s.channels)
        .into_par_iter()
        .map(|c| gradient_sums(s, x, g, &per_channel, c))
        .unzip();
    let n = s.count() as f32;
    let terms = Terms {
        mean_g: beta_grad.iter().map(|v| v / n).collect(),
        mean_gx: gamma_grad.iter().map(|v| v / n).collect(),
        k: gamma.iter().zip(&inv_std).map(|(g, is)| g * is).collect(),
    };
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(s.image_len())
        .zip(x.par_chunks(s.image_len()).zip(g.par_chunks(s.image_len())))
        .for_each(|(dx, (x, g))| input_grad_image(s, x, g, &per_channel, &terms, dx));
    Backward {
        x: dx,
        gamma: gamma_grad,
        beta: beta_grad,
    }
}

/// What the backward needs of each channel to recompute the forward's output.
struct Channels<'a> {
    scale: &'a [f32],
    shift: &'a [f32],
    mean: &'a [f32],
    inv_std: &'a [f32],
    relu: bool,
}

/// Per channel, the terms of the input gradient: the means of g' and of g'·x̂ over the
/// channel, and `k = gamma · inv_std`.
struct Terms {
    mean_g: Vec<f32>,
    mean_gx: Vec<f32>,
    k: Vec<f32>,
}

// The loops below are plain Rust, compiled once per SIMD level so that they vectorise with
// the CPU's widest registers (the crate itself is built for the baseline x86-64, SSE2). The
// output passes run over whole images, so that small maps (36 values per plane at 6x6) are
// not cut into tiny parallel jobs.

crate::compiled_for_level! {
    /// Mean and biased variance of channel `c`: two passes (the second from cache), each plane
    /// summed in f32 lanes and the planes in f64. Plain `for` loops: an iterator's `map` +
    /// `sum` here became a call to `Map::fold`, compiled for the baseline CPU, so the sums ran
    /// 4 lanes wide whatever the level.
    fn channel_stats(s: &NormShape, x: &[f32], c: usize) -> (f32, f32) {
        let mut sum = 0.0f64;
        for p in s.planes(x, c) {
            sum += lane_sums(p, p, |v, _| [v])[0] as f64;
        }
        let m = (sum / s.count()) as f32;
        let mut squares = 0.0f64;
        for p in s.planes(x, c) {
            squares += lane_sums(p, p, |v, _| [(v - m) * (v - m)])[0] as f64;
        }
        (m, (squares / s.count()) as f32)
    }
}

crate::compiled_for_level! {
    /// One image's output: `x · scale + shift` per channel, clamped at 0 when `relu`.
    fn normalise_image(
        s: &NormShape,
        x: &[f32],
        scale: &[f32],
        shift: &[f32],
        relu: bool,
        y: &mut [f32],
    ) {
        let planes = y.chunks_exact_mut(s.spatial).zip(x.chunks_exact(s.spatial));
        for ((y, x), (a, b)) in planes.zip(scale.iter().zip(shift)) {
            if relu {
                y.iter_mut()
                    .zip(x)
                    .for_each(|(y, x)| *y = (x * a + b).max(0.0));
            } else {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = x * a + b);
            }
        }
    }
}

crate::compiled_for_level! {
    /// For channel `c`: Σ g' and Σ g'·x̂, where g' is `g` masked by the ReLU (zero where the
    /// output was clamped) and x̂ the normalised input: the gradients of beta and gamma.
    fn gradient_sums(s: &NormShape, x: &[f32], g: &[f32], ch: &Channels, c: usize) -> (f32, f32) {
        let (a, b, m, is) = (ch.scale[c], ch.shift[c], ch.mean[c], ch.inv_std[c]);
        let relu = ch.relu;
        let mut sum_g = 0.0f64;
        let mut sum_gx = 0.0f64;
        for (xp, gp) in s.planes(x, c).zip(s.planes(g, c)) {
            let [sg, sgx] = lane_sums(xp, gp, |x, g| {
                let g = if relu && x * a + b <= 0.0 { 0.0 } else { g };
                [g, g * (x - m) * is]
            });
            sum_g += sg as f64;
            sum_gx += sgx as f64;
        }
        (sum_g as f32, sum_gx as f32)
    }
}

crate::compiled_for_level! {
    /// One image's input gradient: per channel `k · (g' − mean(g') − (x − mean) · inv_std ·
    /// mean(g'·x̂))`.
    fn input_grad_image(
        s: &NormShape,
        x: &[f32],
        g: &[f32],
        ch: &Channels,
        terms: &Terms,
        dx: &mut [f32],
    ) {
        let relu = ch.relu;
        let planes = dx
            .chunks_exact_mut(s.spatial)
            .zip(x.chunks_exact(s.spatial).zip(g.chunks_exact(s.spatial)));
        for (c, (dx, (x, g))) in planes.enumerate() {
            let (a, b, m, is) = (ch.scale[c], ch.shift[c], ch.mean[c], ch.inv_std[c]);
            let (mean_g, mean_gx, k) = (terms.mean_g[c], terms.mean_gx[c], terms.k[c]);
            for ((dx, x), g) in dx.iter_mut().zip(x).zip(g) {
                let g = if relu && x * a + b <= 0.0 { 0.0 } else { *g };
                *dx = k * (g - mean_g - (x - m) * is * mean_gx);
            }
        }
    }
}

/// Per channel, the output as `x · scale + shift`.
fn affine(
    mean: &[f32],
    variance: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>) {
    (0..mean.len())
        .map(|c| {
            let scale = gamma[c] as f64 / (variance[c] as f64 + eps).sqrt();
            (
                scale as f32,
                (beta[c] as f64 - mean[c] as f64 * scale) as f32,
            )
        })
        .unzip()
}

/// Independent partial sums per sum in [`lane_sums`]: one AVX-512 register, two AVX2 ones.
const LANES: usize = 16;

/// `Σ f(a[i], b[i])` (K sums at once) in [`LANES`] independent lanes, so that the compiler
/// vectorises it. A single running sum is a chain of dependent additions, one every few
/// cycles, which made the statistics of batch norm cost more than its output pass.
#[inline(always)]
fn lane_sums<const K: usize>(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> [f32; K]) -> [f32; K] {
    let mut acc = [[0.0f32; LANES]; K];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut total = [0.0f32; K];
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        total.iter_mut().zip(f(*x, *y)).for_each(|(t, v)| *t += v);
    }
    for (x, y) in ca.zip(cb) {
        for lane in 0..LANES {
            let v = f(x[lane], y[lane]);
            for k in 0..K {
                acc[k][lane] += v[k];
            }
        }
    }
    for k in 0..K {
        total[k] += acc[k].iter().sum::<f32>();
    }
    total
}

fn check(s: &NormShape, x: &[f32], gamma: &[f32], beta: &[f32]) {
    assert_eq!(x.len(), s.len(), "batch norm: input size");
    assert_eq!(gamma.len(), s.channels, "batch norm: gamma size");
    assert_eq!(beta.len(), s.channels, "batch norm: beta size");
    assert!(s.batch * s.spatial > 0, "batch norm: no values per channel");
}
