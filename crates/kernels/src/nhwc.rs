//! Channels-last (height x width x channels) inference kernels for the face detector: the
//! operations of a lightweight detection network (YuNet) on one image, with no autodiff and
//! no burn tensors. Channels-last puts the channels of one pixel side by side, so every
//! kernel's inner loop runs over channels: contiguous, the same length at every pixel, and
//! vectorised with the CPU's widest registers ([`crate::compiled_for_level`]). Pointwise
//! (1x1) convolutions are one matrix multiply (pixels x in-channels times in x out), on the
//! same `gemm` as training. Every function is single-threaded: callers run images in
//! parallel.

use crate::gemm::{MatRef, matmul};

/// A channels-last feature map of one image: `data[(y * w + x) * c + channel]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

impl Map {
    pub fn zeros(h: usize, w: usize, c: usize) -> Map {
        Map {
            h,
            w,
            c,
            data: vec![0.0; h * w * c],
        }
    }
}

/// 3x3 convolution with stride 2 and padding 1, then bias and ReLU: the detector's first
/// layer, 3 channels in, 16 out. `weight` is `[ky][kx][cin][cout]`.
pub fn conv3x3_s2_relu(x: &Map, weight: &[f32], bias: &[f32]) -> Map {
    assert!(
        x.c == 3 && bias.len() == 16,
        "conv3x3_s2: 3 channels in, 16 out"
    );
    assert_eq!(weight.len(), 9 * 3 * 16, "conv3x3_s2: weight size");
    let (oh, ow) = (x.h.div_ceil(2), x.w.div_ceil(2));
    let mut out = Map::zeros(oh, ow, 16);
    conv3x3_s2_loops(x, weight, bias, &mut out);
    out
}

compiled_for_level! {
    fn conv3x3_s2_loops(x: &Map, weight: &[f32], bias: &[f32], out: &mut Map) {
        // Fixed sizes: the 16 outputs of a pixel stay in one register (two on AVX2) and every
        // loop below unrolls.
        let bias: &[f32; 16] = bias.try_into().expect("16 biases");
        for oy in 0..out.h {
            for ox in 0..out.w {
                let mut acc = *bias;
                for ky in 0..3 {
                    let iy = (2 * oy + ky) as isize - 1;
                    if iy < 0 || iy >= x.h as isize {
                        continue;
                    }
                    for kx in 0..3 {
                        let ix = (2 * ox + kx) as isize - 1;
                        if ix < 0 || ix >= x.w as isize {
                            continue;
                        }
                        let px: &[f32; 3] = x.data[(iy as usize * x.w + ix as usize) * 3..][..3]
                            .try_into()
                            .expect("3 channels");
                        let w: &[f32; 48] = weight[(ky * 3 + kx) * 48..][..48].try_into().expect("3x16 weights");
                        for ci in 0..3 {
                            for co in 0..16 {
                                acc[co] += px[ci] * w[ci * 16 + co];
                            }
                        }
                    }
                }
                for v in acc.iter_mut() {
                    *v = v.max(0.0);
                }
                out.data[(oy * out.w + ox) * 16..][..16].copy_from_slice(&acc);
            }
        }
    }
}

/// 1x1 convolution plus bias: `weight` is `[cin][cout]`.
pub fn pointwise(x: &Map, weight: &[f32], bias: &[f32]) -> Map {
    let cout = bias.len();
    assert_eq!(weight.len(), x.c * cout, "pointwise: weight size");
    let pixels = x.h * x.w;
    let mut out = Map {
        h: x.h,
        w: x.w,
        c: cout,
        data: bias.repeat(pixels),
    };
    matmul(
        &mut out.data,
        cout,
        MatRef::rows(&x.data, pixels, x.c),
        MatRef::rows(weight, x.c, cout),
        true,
    );
    out
}

/// 3x3 depthwise convolution with padding 1 and stride 1, plus bias, then ReLU when `relu`.
/// `weight` is `[ky][kx][c]`.
pub fn depthwise3x3(x: &Map, weight: &[f32], bias: &[f32], relu: bool) -> Map {
    assert_eq!(bias.len(), x.c, "depthwise3x3: bias size");
    assert_eq!(weight.len(), 9 * x.c, "depthwise3x3: weight size");
    let mut out = Map::zeros(x.h, x.w, x.c);
    // The network's channel counts get loops of fixed length, whose sums stay in registers.
    match x.c {
        64 => depthwise3x3_c64(x, weight, bias, relu, &mut out),
        16 => depthwise3x3_c16(x, weight, bias, relu, &mut out),
        _ => depthwise3x3_any(x, weight, bias, relu, &mut out),
    }
    out
}

compiled_for_level! {
    fn depthwise3x3_c64(x: &Map, weight: &[f32], bias: &[f32], relu: bool, out: &mut Map) {
        depthwise3x3_fixed::<64>(x, weight, bias, relu, out)
    }
}

compiled_for_level! {
    fn depthwise3x3_c16(x: &Map, weight: &[f32], bias: &[f32], relu: bool, out: &mut Map) {
        depthwise3x3_fixed::<16>(x, weight, bias, relu, out)
    }
}

/// Depthwise 3x3 for exactly `C` channels.
#[inline(always)]
fn depthwise3x3_fixed<const C: usize>(
    x: &Map,
    weight: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut Map,
) {
    let bias: &[f32; C] = bias.try_into().expect("C biases");
    let taps: Vec<&[f32; C]> = weight
        .chunks_exact(C)
        .map(|w| w.try_into().expect("C weights"))
        .collect();
    for y in 0..x.h {
        let (y0, y1) = (y.saturating_sub(1), (y + 2).min(x.h));
        for xx in 0..x.w {
            let (x0, x1) = (xx.saturating_sub(1), (xx + 2).min(x.w));
            let mut acc = *bias;
            for iy in y0..y1 {
                let ky = iy + 1 - y;
                for ix in x0..x1 {
                    let px: &[f32; C] = x.data[(iy * x.w + ix) * C..][..C]
                        .try_into()
                        .expect("C channels");
                    let w = taps[ky * 3 + ix + 1 - xx];
                    for i in 0..C {
                        acc[i] += px[i] * w[i];
                    }
                }
            }
            if relu {
                for v in acc.iter_mut() {
                    *v = v.max(0.0);
                }
            }
            out.data[(y * x.w + xx) * C..][..C].copy_from_slice(&acc);
        }
    }
}

compiled_for_level! {
    fn depthwise3x3_any(x: &Map, weight: &[f32], bias: &[f32], relu: bool, out: &mut Map) {
        let c = x.c;
        for y in 0..x.h {
            let (y0, y1) = (y.saturating_sub(1), (y + 2).min(x.h));
            for xx in 0..x.w {
                let (x0, x1) = (xx.saturating_sub(1), (xx + 2).min(x.w));
                let o = &mut out.data[(y * x.w + xx) * c..][..c];
                o.copy_from_slice(bias);
                for iy in y0..y1 {
                    let ky = iy + 1 - y;
                    for ix in x0..x1 {
                        let kx = ix + 1 - xx;
                        let px = &x.data[(iy * x.w + ix) * c..][..c];
                        let w = &weight[(ky * 3 + kx) * c..][..c];
                        for ((o, &a), &w) in o.iter_mut().zip(px).zip(w) {
                            *o += a * w;
                        }
                    }
                }
                if relu {
                    for v in o.iter_mut() {
                        *v = v.max(0.0);
                    }
                }
            }
        }
    }
}

/// 2x2 max pooling with stride 2; an odd last row or column is dropped (floor mode).
pub fn max_pool2x2(x: &Map) -> Map {
    let mut out = Map::zeros(x.h / 2, x.w / 2, x.c);
    max_pool2x2_loops(x, &mut out);
    out
}

compiled_for_level! {
    fn max_pool2x2_loops(x: &Map, out: &mut Map) {
        let c = x.c;
        for oy in 0..out.h {
            for ox in 0..out.w {
                let o = &mut out.data[(oy * out.w + ox) * c..][..c];
                let at = |dy: usize, dx: usize| &x.data[((2 * oy + dy) * x.w + 2 * ox + dx) * c..][..c];
                let (a, b, d, e) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                for i in 0..c {
                    o[i] = a[i].max(b[i]).max(d[i].max(e[i]));
                }
            }
        }
    }
}

/// `big += small` upsampled 2x by nearest neighbour (`big` is exactly twice `small`'s size).
pub fn add_upsampled2x(big: &mut Map, small: &Map) {
    assert!(
        big.h == 2 * small.h && big.w == 2 * small.w && big.c == small.c,
        "add_upsampled2x: {}x{}x{} is not twice {}x{}x{}",
        big.h,
        big.w,
        big.c,
        small.h,
        small.w,
        small.c
    );
    add_upsampled2x_loops(big, small);
}

compiled_for_level! {
    fn add_upsampled2x_loops(big: &mut Map, small: &Map) {
        let c = big.c;
        for y in 0..big.h {
            for x in 0..big.w {
                let s = &small.data[((y / 2) * small.w + x / 2) * c..][..c];
                let b = &mut big.data[(y * big.w + x) * c..][..c];
                for (b, &s) in b.iter_mut().zip(s) {
                    *b += s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(h: usize, w: usize, c: usize, seed: f32) -> Map {
        Map {
            h,
            w,
            c,
            data: (0..h * w * c)
                .map(|i| ((i as f32 + seed) * 0.731).sin())
                .collect(),
        }
    }

    fn at(m: &Map, y: isize, x: isize, c: usize) -> f32 {
        if y < 0 || x < 0 || y >= m.h as isize || x >= m.w as isize {
            0.0
        } else {
            m.data[(y as usize * m.w + x as usize) * m.c + c]
        }
    }

    /// A plain 3x3 convolution (padding 1) written out for reference: `groups` is 1 or `c`.
    fn reference_conv(x: &Map, w: &[f32], b: &[f32], stride: usize, depthwise: bool) -> Map {
        let cout = b.len();
        let mut out = Map::zeros(x.h.div_ceil(stride), x.w.div_ceil(stride), cout);
        for oy in 0..out.h {
            for ox in 0..out.w {
                for co in 0..cout {
                    let mut s = b[co];
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (
                                (oy * stride + ky) as isize - 1,
                                (ox * stride + kx) as isize - 1,
                            );
                            if depthwise {
                                s += at(x, iy, ix, co) * w[(ky * 3 + kx) * cout + co];
                            } else {
                                for ci in 0..x.c {
                                    s += at(x, iy, ix, ci)
                                        * w[((ky * 3 + kx) * x.c + ci) * cout + co];
                                }
                            }
                        }
                    }
                    out.data[(oy * out.w + ox) * cout + co] = s;
                }
            }
        }
        out
    }

    fn close(a: &Map, b: &Map) {
        assert_eq!((a.h, a.w, a.c), (b.h, b.w, b.c));
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }

    #[test]
    fn stem_conv_matches_the_written_out_convolution_on_odd_sizes() {
        let x = map(9, 7, 3, 0.0);
        let w: Vec<f32> = (0..9 * 3 * 16).map(|i| (i as f32 * 0.37).cos()).collect();
        let b: Vec<f32> = (0..16).map(|i| i as f32 * 0.1 - 0.8).collect();
        let mut want = reference_conv(&x, &w, &b, 2, false);
        want.data.iter_mut().for_each(|v| *v = v.max(0.0));
        close(&conv3x3_s2_relu(&x, &w, &b), &want);
    }

    #[test]
    fn depthwise_matches_the_written_out_convolution_with_and_without_relu() {
        for c in [1, 10, 16, 64] {
            let x = map(6, 5, c, 1.0);
            let w: Vec<f32> = (0..9 * c).map(|i| (i as f32 * 0.53).sin()).collect();
            let b: Vec<f32> = (0..c).map(|i| i as f32 * 0.05 - 0.3).collect();
            let want = reference_conv(&x, &w, &b, 1, true);
            close(&depthwise3x3(&x, &w, &b, false), &want);
            let mut want_relu = want.clone();
            want_relu.data.iter_mut().for_each(|v| *v = v.max(0.0));
            close(&depthwise3x3(&x, &w, &b, true), &want_relu);
        }
    }

    #[test]
    fn pointwise_is_a_per_pixel_matrix_product_plus_bias() {
        let x = map(3, 4, 5, 2.0);
        let w: Vec<f32> = (0..5 * 7).map(|i| (i as f32 * 0.29).cos()).collect();
        let b: Vec<f32> = (0..7).map(|i| i as f32).collect();
        let out = pointwise(&x, &w, &b);
        for p in 0..12 {
            for co in 0..7 {
                let want: f32 = b[co]
                    + (0..5)
                        .map(|ci| x.data[p * 5 + ci] * w[ci * 7 + co])
                        .sum::<f32>();
                assert!((out.data[p * 7 + co] - want).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn pool_and_upsample_move_values_where_they_belong() {
        let x = map(5, 4, 3, 3.0);
        let p = max_pool2x2(&x);
        assert_eq!((p.h, p.w), (2, 2));
        for (y, xx, c) in [(0, 0, 0), (1, 1, 2), (1, 0, 1)] {
            let want = [(0, 0), (0, 1), (1, 0), (1, 1)]
                .iter()
                .map(|&(dy, dx)| at(&x, (2 * y + dy) as isize, (2 * xx + dx) as isize, c))
                .fold(f32::MIN, f32::max);
            assert_eq!(p.data[(y * 2 + xx) * 3 + c], want);
        }
        let mut big = Map::zeros(4, 4, 3);
        add_upsampled2x(&mut big, &p);
        assert_eq!(big.data[(3 * 4 + 2) * 3 + 1], p.data[(2 + 1) * 3 + 1]);
        assert_eq!(big.data[(2 * 4) * 3], p.data[2 * 3]);
    }
}
