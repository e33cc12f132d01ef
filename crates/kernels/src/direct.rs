//! Direct 3x3 convolution (stride 1, padding 1) with AVX-512 or AVX2 ([`crate::simd`]), used
//! instead of im2col + multiply where the CPU has either.
//!
//! Why: im2col writes a patch matrix nine times the input's size, and the multiply then packs
//! it once more before its microkernel reads it. Here the microkernel reads the (zero-bordered)
//! input itself, so neither copy exists. On this project's 2-core Zen 4 machine the forward
//! pass runs at 145-205 GFLOP/s on our layers, close to the cores' peak (docs/performance.md,
//! run F).
//!
//! - forward: each tile holds up to 12 consecutive output positions of one row x 16 output
//!   channels, or 8 x 32, in registers; for every `(c, ky, kx)` it broadcasts the 12 input values
//!   and multiplies them with one packed vector of weights per 16 output channels. AVX2 has
//!   half the registers, each half as wide: its tile is 6 positions x 16 channels, in 12 of
//!   its 16 registers.
//! - input gradient: a forward pass of the output gradient with the kernels turned 180
//!   degrees and their input and output channels swapped (stride 1, padding 1 is its own
//!   transpose; `conv::turned_and_swapped`).
//!
//! The weight gradient's direct form is [`crate::direct_grad`].
//!
//! With 32 or more channels each way, [`crate::winograd`] runs instead of the forward
//! kernel; it reuses this module's register tile for its products.

use std::arch::x86_64::*;

use rayon::prelude::*;

use crate::conv::{ConvShape, Epilogue};
use crate::simd::{Simd, level};

/// Output channels in one vector of a tile's weights: one AVX-512 register, two AVX2 ones.
pub(crate) const LANES: usize = 16;

/// Whether the direct kernel serves this convolution on this CPU: 3x3, stride 1, padding 1,
/// at least 8 input channels (a network's first layer, with one, multiplies faster: its
/// patches are only 9 long), and at least one image per thread (one image is split across
/// threads by `conv::forward_few`), on a CPU with AVX-512 or AVX2.
pub fn applies(s: &ConvShape) -> bool {
    s.kh == 3
        && s.kw == 3
        && s.stride == [1, 1]
        && s.padding == [1, 1]
        && s.cin >= 8
        && s.batch >= rayon::current_num_threads()
        && level().is_some()
}

/// Output channels per tile, in vectors of 16 (two only with AVX-512's 32 registers).
pub(crate) fn vectors_per_tile(cout: usize) -> usize {
    if cout >= 32 && level() == Some(Simd::Avx512) {
        2
    } else {
        1
    }
}

/// Weights `[cout, k]` (for a 3x3 convolution `k = cin · 9`) regrouped as
/// `[cout / block][k][block]`, with `block = 16 · nv` output channels side by side (the last
/// block zero-filled): what [`tile_dispatch`] reads.
pub(crate) fn pack_weights(w: &[f32], cout: usize, k: usize, nv: usize) -> Vec<f32> {
    let block = nv * LANES;
    let mut packed = vec![0.0; cout.div_ceil(block) * k * block];
    for o in 0..cout {
        let (b, lane) = (o / block, o % block);
        for (j, &v) in w[o * k..][..k].iter().enumerate() {
            packed[(b * k + j) * block + lane] = v;
        }
    }
    packed
}

/// The convolution of `x` with `w`, with the epilogue applied to each output value.
///
/// # Panics
/// If [`applies`] is false for `s`.
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], epilogue: &Epilogue) -> Vec<f32> {
    assert!(applies(s), "direct conv: unsupported shape or CPU");
    let (oh, ow) = (s.out_h(), s.out_w());
    let positions = oh * ow;
    let nv = vectors_per_tile(s.cout);
    let block = nv * LANES;
    let k = s.cin * 9;
    let packed = pack_weights(w, s.cout, k, nv);
    let width = s.w + 2;
    let plane = (s.h + 2) * width;
    let mut out = vec![0.0f32; s.batch * s.cout * positions];
    out.par_chunks_mut(s.cout * positions)
        .zip(x.par_chunks(s.cin * s.h * s.w))
        .for_each_init(
            // Zero borders stay zero: only the interior is rewritten per image.
            || vec![0.0f32; s.cin * plane],
            |padded, (out, x)| {
                pad_into(x, s.cin, s.h, s.w, padded, plane, width);
                let mut tile = [[0.0f32; 2 * LANES]; 12];
                for b in 0..s.cout.div_ceil(block) {
                    let weights = &packed[b * k * block..][..k * block];
                    let channels = (b * block)..((b + 1) * block).min(s.cout);
                    for oy in 0..oh {
                        let mut ox = 0;
                        for n in row_tiles(ow, nv) {
                            let input = &padded[oy * width + ox..];
                            // SAFETY: a SIMD level was detected in `applies`; the tile reads
                            // `input[c·plane + ky·width + kx + p]` for p < n ≤ ow - ox,
                            // inside the padded image, and k·block weights.
                            unsafe {
                                tile_dispatch(
                                    n, nv, input, plane, width, s.cin, 3, weights, &mut tile,
                                )
                            };
                            for o in channels.clone() {
                                let lane = o - b * block;
                                let dst = &mut out[o * positions + oy * ow + ox..][..n];
                                for (d, t) in dst.iter_mut().zip(&tile) {
                                    *d = t[lane];
                                }
                                epilogue.apply(o, dst);
                            }
                            ox += n;
                        }
                    }
                }
            },
        );
    out
}

/// Copies `channels` planes of `h x w` into `dst` (planes `plane` apart, rows `width`
/// apart) one row and one column in from the top left, leaving the border as it is (zero).
fn pad_into(
    src: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    dst: &mut [f32],
    plane: usize,
    width: usize,
) {
    for c in 0..channels {
        for y in 0..h {
            dst[c * plane + (y + 1) * width + 1..][..w]
                .copy_from_slice(&src[(c * h + y) * w..][..w]);
        }
    }
}

/// Tile widths covering a row of `ow` outputs: as wide as the registers allow, then what is
/// left. A tile needs `n · nv` sums, `nv` weight vectors and up to `n` broadcast inputs in
/// the 32 AVX-512 registers; with 24 sums LLVM spilled sums to the stack (up to 1.7x
/// slower). AVX2's 6 x 16 tile takes 12 sums, 2 weight vectors and a broadcast of its 16.
pub(crate) fn row_tiles(ow: usize, nv: usize) -> impl Iterator<Item = usize> {
    let widest = match (level(), nv) {
        (Some(Simd::Avx512), 1) => 12,
        (Some(Simd::Avx512), _) => 8,
        _ => 6,
    };
    let mut left = ow;
    std::iter::from_fn(move || {
        let n = [widest, 6, 4, 2, 1].into_iter().find(|&n| n <= left)?;
        left -= n;
        Some(n)
    })
}

/// Runs the tile for `n` positions and `nv` vectors of output channels, over a `side` x
/// `side` window (1 makes it a plain product: `out[p] = Σ_c w[c] · input[c·plane + p]`).
///
/// # Safety
/// [`level`] must be some; `input` must hold `(cin - 1)·plane + (side - 1)·(width + 1) + n`
/// values and `weights` `cin · side² · nv · 16`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile_dispatch(
    n: usize,
    nv: usize,
    input: &[f32],
    plane: usize,
    width: usize,
    cin: usize,
    side: usize,
    weights: &[f32],
    out: &mut [[f32; 2 * LANES]; 12],
) {
    debug_assert!(input.len() >= (cin - 1) * plane + (side - 1) * (width + 1) + n);
    debug_assert_eq!(weights.len(), cin * side * side * nv * LANES);
    let (x, w) = (input.as_ptr(), weights.as_ptr());
    // SAFETY: forwarded from the caller; each level runs only the tiles it has the
    // registers for.
    unsafe {
        if level() == Some(Simd::Avx2) {
            return match (n, nv) {
                (6, 1) => tile_avx2::<6>(x, plane, width, cin, side, w, out),
                (4, 1) => tile_avx2::<4>(x, plane, width, cin, side, w, out),
                (2, 1) => tile_avx2::<2>(x, plane, width, cin, side, w, out),
                (1, 1) => tile_avx2::<1>(x, plane, width, cin, side, w, out),
                _ => unreachable!("no {n}x{nv} AVX2 tile"),
            };
        }
        match (n, nv) {
            (12, 1) => tile::<12, 1>(x, plane, width, cin, side, w, out),
            (6, 1) => tile::<6, 1>(x, plane, width, cin, side, w, out),
            (4, 1) => tile::<4, 1>(x, plane, width, cin, side, w, out),
            (2, 1) => tile::<2, 1>(x, plane, width, cin, side, w, out),
            (1, 1) => tile::<1, 1>(x, plane, width, cin, side, w, out),
            (8, 2) => tile::<8, 2>(x, plane, width, cin, side, w, out),
            (6, 2) => tile::<6, 2>(x, plane, width, cin, side, w, out),
            (4, 2) => tile::<4, 2>(x, plane, width, cin, side, w, out),
            (2, 2) => tile::<2, 2>(x, plane, width, cin, side, w, out),
            (1, 2) => tile::<1, 2>(x, plane, width, cin, side, w, out),
            _ => unreachable!("no {n}x{nv} tile"),
        }
    }
}

/// `NP` output positions x `NV · 16` output channels: the sum over input channels and the
/// 3x3 window, accumulated in `NP · NV` registers and stored to `out[p][lane]`.
#[target_feature(enable = "avx512f")]
unsafe fn tile<const NP: usize, const NV: usize>(
    x: *const f32,
    plane: usize,
    width: usize,
    cin: usize,
    side: usize,
    w: *const f32,
    out: &mut [[f32; 2 * LANES]; 12],
) {
    // The window's side comes in at run time on purpose: with a constant 3, LLVM unrolled
    // all nine taps, hoisted their loads and spilled the sums to the stack (1.7x slower).
    let mut acc = [[_mm512_setzero_ps(); NV]; NP];
    let mut w = w;
    // SAFETY (whole body): every read is inside the bounds the caller guaranteed.
    unsafe {
        for c in 0..cin {
            let xc = x.add(c * plane);
            for ky in 0..side {
                let row = xc.add(ky * width);
                for kx in 0..side {
                    let xk = row.add(kx);
                    let mut wv = [_mm512_setzero_ps(); NV];
                    #[allow(clippy::needless_range_loop)]
                    for v in 0..NV {
                        wv[v] = _mm512_loadu_ps(w.add(v * LANES));
                    }
                    w = w.add(NV * LANES);
                    #[allow(clippy::needless_range_loop)]
                    for p in 0..NP {
                        let b = _mm512_set1_ps(*xk.add(p));
                        for v in 0..NV {
                            acc[p][v] = _mm512_fmadd_ps(b, wv[v], acc[p][v]);
                        }
                    }
                }
            }
        }
        #[allow(clippy::needless_range_loop)]
        for p in 0..NP {
            for v in 0..NV {
                _mm512_storeu_ps(out[p].as_mut_ptr().add(v * LANES), acc[p][v]);
            }
        }
    }
}

/// [`tile`] in AVX2: `NP` output positions x 16 output channels, each sum in two registers.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const NP: usize>(
    x: *const f32,
    plane: usize,
    width: usize,
    cin: usize,
    side: usize,
    w: *const f32,
    out: &mut [[f32; 2 * LANES]; 12],
) {
    const HALF: usize = LANES / 2;
    let mut acc = [[_mm256_setzero_ps(); 2]; NP];
    let mut w = w;
    // SAFETY (whole body): every read is inside the bounds the caller guaranteed.
    unsafe {
        for c in 0..cin {
            let xc = x.add(c * plane);
            for ky in 0..side {
                let row = xc.add(ky * width);
                for kx in 0..side {
                    let xk = row.add(kx);
                    let wv = [_mm256_loadu_ps(w), _mm256_loadu_ps(w.add(HALF))];
                    w = w.add(LANES);
                    #[allow(clippy::needless_range_loop)]
                    for p in 0..NP {
                        let b = _mm256_broadcast_ss(&*xk.add(p));
                        for v in 0..2 {
                            acc[p][v] = _mm256_fmadd_ps(b, wv[v], acc[p][v]);
                        }
                    }
                }
            }
        }
        #[allow(clippy::needless_range_loop)]
        for p in 0..NP {
            for v in 0..2 {
                _mm256_storeu_ps(out[p].as_mut_ptr().add(v * HALF), acc[p][v]);
            }
        }
    }
}
