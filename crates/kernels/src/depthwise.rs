//! Depthwise 2-D convolution (one filter per channel, stride 1, dilation 1) on contiguous
//! NCHW f32 data: the pieces of its backward pass that burn lacks.
//!
//! Why: mini-Xception's separable convolutions are a depthwise 3x3 followed by a 1x1.
//! burn's flex backend has a direct depthwise forward (per-plane multiply-adds with
//! analytic bounds; we use it as it is), but its backward goes through the general grouped
//! convolution: the input gradient as a transposed convolution and the weight gradient as a
//! convolution whose kernel is the whole output-gradient plane. Here:
//!
//! - the input gradient is the depthwise convolution of the output gradient with each
//!   kernel turned by 180 degrees and the complementary padding ([`turned`],
//!   [`DepthwiseShape::transposed_padding`]), so burn's direct forward computes it;
//! - each weight gradient is one long dot product per tap: the output gradient, widened
//!   to the rows of the zero-padded input (zeros in the extra columns), against the padded
//!   input at the tap's offset ([`weight_grad`]).

use std::cell::RefCell;

use rayon::prelude::*;

/// Sizes: input `[batch, channels, h, w]`, weight `[channels, 1, kh, kw]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthwiseShape {
    pub batch: usize,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub padding: [usize; 2],
}

impl DepthwiseShape {
    pub fn out_h(&self) -> usize {
        self.h + 2 * self.padding[0] + 1 - self.kh
    }

    pub fn out_w(&self) -> usize {
        self.w + 2 * self.padding[1] + 1 - self.kw
    }

    fn taps(&self) -> usize {
        self.kh * self.kw
    }

    /// The padded input's row length.
    fn padded_w(&self) -> usize {
        self.w + 2 * self.padding[1]
    }

    /// The padding of the convolution that gives the input gradient (over the output
    /// gradient, with the turned kernel): `kernel - 1 - padding`.
    pub fn transposed_padding(&self) -> [usize; 2] {
        [self.kh - 1 - self.padding[0], self.kw - 1 - self.padding[1]]
    }

    /// Panics unless the sizes describe a convolution we handle and `x`, `w` fit them.
    pub fn check(&self, x: &[f32], w: &[f32]) {
        assert!(
            self.padding[0] < self.kh && self.padding[1] < self.kw,
            "depthwise conv2d: padding must be smaller than the kernel"
        );
        assert!(
            self.h + 2 * self.padding[0] >= self.kh && self.w + 2 * self.padding[1] >= self.kw,
            "depthwise conv2d: kernel larger than the padded input"
        );
        assert_eq!(
            x.len(),
            self.batch * self.channels * self.h * self.w,
            "depthwise conv2d: input size"
        );
        assert_eq!(
            w.len(),
            self.channels * self.taps(),
            "depthwise conv2d: weight size"
        );
    }
}

/// Each channel's `taps` kernel values in reverse order: the kernels turned by 180 degrees.
pub fn turned(w: &[f32], taps: usize) -> Vec<f32> {
    w.chunks_exact(taps)
        .flat_map(|t| t.iter().rev().copied())
        .collect()
}

/// Buffers one thread reuses from plane to plane.
#[derive(Default)]
struct Scratch {
    padded: Vec<f32>,
    wide: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// `Σ a[i] · b[i]` in eight lanes, so that it vectorises (the compiler may not reorder a
/// plain float sum).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (ca, cb) = (a[..n].chunks_exact(8), b[..n].chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut lanes = [0.0f32; 8];
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The gradient of the weights `[channels, 1, kh, kw]` given the input `x` and the output
/// gradient `g`; per channel and tap, images are summed in f64.
pub fn weight_grad(s: &DepthwiseShape, x: &[f32], g: &[f32]) -> Vec<f32> {
    let (oh, ow, plane_in) = (s.out_h(), s.out_w(), s.h * s.w);
    assert_eq!(
        g.len(),
        s.batch * s.channels * oh * ow,
        "depthwise conv2d backward: gradient size"
    );
    if oh * ow == 0 || plane_in == 0 {
        return vec![0.0; s.channels * s.taps()];
    }
    let pw = s.padded_w();
    // The padded plane, plus `kw` zeros so that the last tap's run stays inside.
    let padded_len = (s.h + 2 * s.padding[0]) * pw + s.kw;
    (0..s.channels)
        .into_par_iter()
        .flat_map_iter(|c| {
            let mut sums = vec![0.0f64; s.taps()];
            SCRATCH.with(|sc| {
                let Scratch { padded, wide } = &mut *sc.borrow_mut();
                padded.clear();
                padded.resize(padded_len, 0.0);
                wide.clear();
                wide.resize(oh * pw, 0.0);
                for image in 0..s.batch {
                    let plane = image * s.channels + c;
                    let x = &x[plane * plane_in..][..plane_in];
                    for (y, row) in x.chunks_exact(s.w).enumerate() {
                        padded[(y + s.padding[0]) * pw + s.padding[1]..][..s.w]
                            .copy_from_slice(row);
                    }
                    let g = &g[plane * oh * ow..][..oh * ow];
                    for (wide, row) in wide.chunks_exact_mut(pw).zip(g.chunks_exact(ow)) {
                        wide[..ow].copy_from_slice(row);
                    }
                    for ky in 0..s.kh {
                        for kx in 0..s.kw {
                            let src = &padded[ky * pw + kx..][..oh * pw];
                            sums[ky * s.kw + kx] += dot(wide, src) as f64;
                        }
                    }
                }
            });
            sums.into_iter().map(|v| v as f32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one output value at a time.
    fn naive_forward(s: &DepthwiseShape, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (oh, ow) = (s.out_h(), s.out_w());
        let mut out = vec![0.0; s.batch * s.channels * oh * ow];
        for plane in 0..s.batch * s.channels {
            let c = plane % s.channels;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut v = 0.0;
                    for ky in 0..s.kh {
                        for kx in 0..s.kw {
                            let (iy, ix) = (
                                (oy + ky) as isize - s.padding[0] as isize,
                                (ox + kx) as isize - s.padding[1] as isize,
                            );
                            if iy >= 0 && ix >= 0 && (iy as usize) < s.h && (ix as usize) < s.w {
                                v += w[(c * s.kh + ky) * s.kw + kx]
                                    * x[(plane * s.h + iy as usize) * s.w + ix as usize];
                            }
                        }
                    }
                    out[(plane * oh + oy) * ow + ox] = v;
                }
            }
        }
        out
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.731).sin()).collect()
    }

    fn shapes() -> Vec<DepthwiseShape> {
        let base = DepthwiseShape {
            batch: 2,
            channels: 3,
            h: 7,
            w: 6,
            kh: 3,
            kw: 3,
            padding: [1, 1],
        };
        vec![
            base,
            DepthwiseShape {
                padding: [0, 0],
                ..base
            },
            DepthwiseShape {
                kh: 5,
                kw: 3,
                padding: [2, 0],
                ..base
            },
            // Padding wider than the map: some taps read nothing at all.
            DepthwiseShape {
                h: 1,
                w: 2,
                kh: 3,
                kw: 5,
                padding: [1, 2],
                ..base
            },
        ]
    }

    /// ⟨dw(g), w⟩ = ⟨g, conv(x, w)⟩, as the convolution is linear in its weights; and the
    /// turned kernel with the transposed padding gives the input gradient:
    /// ⟨conv(g, turned w), x⟩ = ⟨g, conv(x, w)⟩.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward() {
        for s in shapes() {
            let x = values(s.batch * s.channels * s.h * s.w, 1.0);
            let w = values(s.channels * s.taps(), 2.0);
            let g = values(s.batch * s.channels * s.out_h() * s.out_w(), 3.0);
            let dot =
                |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a * b) as f64).sum::<f64>();
            let want = dot(&g, &naive_forward(&s, &x, &w));
            let dw = weight_grad(&s, &x, &g);
            assert!(
                (dot(&dw, &w) - want).abs() < 1e-4 * want.abs().max(1.0),
                "{s:?} dw"
            );
            let back = DepthwiseShape {
                h: s.out_h(),
                w: s.out_w(),
                padding: s.transposed_padding(),
                ..s
            };
            let dx = naive_forward(&back, &g, &turned(&w, s.taps()));
            assert_eq!((back.out_h(), back.out_w()), (s.h, s.w));
            assert!(
                (dot(&dx, &x) - want).abs() < 1e-4 * want.abs().max(1.0),
                "{s:?} dx"
            );
        }
    }
}
