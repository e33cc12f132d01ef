//! Winograd F(2x2, 3x3) convolution (stride 1, padding 1) with AVX-512 or AVX2, for the deep
//! layers.
//!
//! Why: a 3x3 convolution spends 9 multiply-adds per output and input channel. Winograd's
//! minimal filtering computes each 2x2 block of outputs from a 4x4 block of inputs with 16
//! products instead of 36, 2.25x fewer multiplies, at the price of cheap linear transforms
//! (additions) of the input tiles, the kernels and the output tiles:
//!
//! `M[e] (cout x tiles) = U[e] (cout x cin) · V[e] (cin x tiles)` for each of the 16
//! positions `e` of a 4x4 tile, with `U = G g Gᵀ` (each 3x3 kernel `g`), `V = Bᵀ d B` (each
//! 4x4 input tile `d`) and the 2x2 outputs `y = Aᵀ M A`.
//!
//! The 16 products run on the direct kernel's register tile ([`crate::direct`]) with a 1x1
//! window: up to 12 tiles x 16 output channels (or 8 x 32; 6 x 16 in AVX2) at a time, for
//! all 16 `e`, and the output transform of those tiles follows while they are in L1, so `M`
//! is never written out. On every shape with 32+ channels each way that we timed, from 32→32 at
//! 24x24 to VGG13's 64→64 at 48x48, this beat the direct kernel; with 16 channels it did
//! not (docs/performance.md, run G). F(2x2, 3x3) costs almost no precision in f32: its
//! transforms only add, subtract and halve.
//!
//! The input gradient is the same forward pass of the output gradient with the kernels
//! turned 180 degrees and the channels swapped ([`crate::conv::turned_and_swapped`]). The
//! weight gradient has a Winograd form as well ([`weight_grad`]), faster than im2col on the
//! small maps of `ferrite`'s deep layers only.

use std::arch::x86_64::*;

use rayon::prelude::*;

use crate::conv::{ConvShape, Epilogue, resized, with_scratch};
use crate::direct::{LANES, pack_weights, row_tiles, tile_dispatch, vectors_per_tile};
use crate::gemm::{MatRef, matmul};
use crate::simd::{Simd, level};

/// Values in a transformed tile (4x4).
const E: usize = 16;

/// Fewest tiles per unit of parallel work: small maps (9 tiles at 6x6) batch several
/// images, so that the kernels' transform and packing are spread over enough work.
const MIN_TILES: usize = 128;

/// Whether the Winograd kernel serves this convolution: 3x3, stride 1, padding 1, with at
/// least 32 input and 32 output channels (fewer, and the transforms cost more than the
/// multiplies save), at least one image per thread, on a CPU with AVX-512 or AVX2.
pub fn applies(s: &ConvShape) -> bool {
    s.kh == 3
        && s.kw == 3
        && s.stride == [1, 1]
        && s.padding == [1, 1]
        && s.cin >= 32
        && s.cout >= 32
        && s.batch >= rayon::current_num_threads()
        && level().is_some()
}

/// Rows and columns of 2x2 output tiles over a map (the last ones past an odd edge).
fn tile_grid(s: &ConvShape) -> (usize, usize) {
    (s.h.div_ceil(2), s.w.div_ceil(2))
}

/// `U = G g Gᵀ` for every kernel `g` of `w [cout, cin, 3, 3]`, as `[16][cout][cin]`.
fn transform_kernels(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let (cout, cin) = (s.cout, s.cin);
    let mut u = vec![0.0f32; E * cout * cin];
    for o in 0..cout {
        for c in 0..cin {
            let g = &w[(o * cin + c) * 9..][..9];
            // G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1], applied to the columns, then the rows.
            let mut t = [[0.0f32; 3]; 4];
            for j in 0..3 {
                let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
                t[0][j] = g0;
                t[1][j] = 0.5 * (g0 + g1 + g2);
                t[2][j] = 0.5 * (g0 - g1 + g2);
                t[3][j] = g2;
            }
            for (i, [a, b, d]) in t.into_iter().enumerate() {
                let row = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
                for (j, v) in row.into_iter().enumerate() {
                    u[((i * 4 + j) * cout + o) * cin + c] = v;
                }
            }
        }
    }
    u
}

/// Images per multiply: enough for [`MIN_TILES`] tiles, and a number of chunks that splits
/// evenly over the threads.
fn images_per_chunk(s: &ConvShape, tiles_per_image: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let wanted = MIN_TILES.div_ceil(tiles_per_image).clamp(1, s.batch.max(1));
    let rounds = s.batch.div_ceil(threads * wanted);
    s.batch.div_ceil(threads * rounds).max(1)
}

/// The convolution of `x` with `w`, with the epilogue applied to each output value.
///
/// # Panics
/// If [`applies`] is false for `s`.
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], epilogue: &Epilogue) -> Vec<f32> {
    assert!(applies(s), "winograd conv: unsupported shape or CPU");
    let positions = s.h * s.w;
    let (th, tw) = tile_grid(s);
    let tiles_per_image = th * tw;
    let nv = vectors_per_tile(s.cout);
    let block = nv * LANES;
    let blocks = s.cout.div_ceil(block);
    // U, packed for the tile: `[e][block][cin][16 · nv]`.
    let u = transform_kernels(s, w);
    let mut packed = Vec::with_capacity(E * blocks * s.cin * block);
    for ue in u.chunks_exact(s.cout * s.cin) {
        packed.extend(pack_weights(ue, s.cout, s.cin, nv));
    }
    let per_e = blocks * s.cin * block;
    let chunk = images_per_chunk(s, tiles_per_image);
    let mut out = vec![0.0f32; s.batch * s.cout * positions];
    out.par_chunks_mut(chunk * s.cout * positions)
        .zip(x.par_chunks(chunk * s.cin * positions))
        .for_each(|(out, x)| {
            let n = x.len() / (s.cin * positions);
            let tiles = n * tiles_per_image;
            with_scratch(|sc| {
                let v = resized(&mut sc.col, E * s.cin * tiles);
                transform_inputs(s, x, n, v, &mut sc.padded);
                // M for one group of tiles and one block of channels: `[e][tile][lane]`.
                let mut m = [[[0.0f32; 2 * LANES]; 12]; E];
                for b in 0..blocks {
                    let channels = (b * block)..((b + 1) * block).min(s.cout);
                    let mut first = 0;
                    for np in row_tiles(tiles, nv) {
                        for (e, me) in m.iter_mut().enumerate() {
                            let weights = &packed[e * per_e + b * s.cin * block..][..s.cin * block];
                            // SAFETY: a SIMD level was detected in `applies`; the tile reads
                            // `v[e·cin·tiles + c·tiles + first + p]` for c < cin and
                            // p < np ≤ tiles − first, inside `v`, and cin·block weights.
                            unsafe {
                                tile_dispatch(
                                    np,
                                    nv,
                                    &v[e * s.cin * tiles + first..],
                                    tiles,
                                    0,
                                    s.cin,
                                    1,
                                    weights,
                                    me,
                                )
                            };
                        }
                        transform_outputs(s, &m, first..first + np, channels.clone(), out);
                        first += np;
                    }
                }
            });
            if !epilogue.is_noop() {
                for (i, plane) in out.chunks_exact_mut(positions).enumerate() {
                    epilogue.apply(i % s.cout, plane);
                }
            }
        });
    out
}

/// `V = Bᵀ d B` for every 4x4 input tile `d` of the `n` images in `x`, as
/// `[16][cin][tiles]` (tiles image by image, row by row). Tile `(ty, tx)` covers inputs
/// `2ty − 1 .. 2ty + 3` by `2tx − 1 .. 2tx + 3`, zero outside the image.
///
/// Each plane is copied into a zero-bordered buffer, then transformed a row of tiles at a
/// time by [`transform_tile_row`] (or its AVX2 twin), with
/// `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`.
fn transform_inputs(s: &ConvShape, x: &[f32], n: usize, v: &mut [f32], padded: &mut Vec<f32>) {
    let (h, wd) = (s.h, s.w);
    let (th, tw) = tile_grid(s);
    let tiles = n * th * tw;
    // The image with a zero border, grown to whole tiles: `2·th + 2` rows of `2·tw + 2`.
    let pw = 2 * tw + 2;
    padded.clear();
    padded.resize((2 * th + 2) * pw, 0.0);
    let transform_row: unsafe fn(&[f32], usize, &mut [f32], usize, usize) = match level() {
        Some(Simd::Avx512) => transform_tile_row,
        Some(Simd::Avx2) => transform_tile_row_avx2,
        None => unreachable!("winograd without a SIMD level"),
    };
    for image in 0..n {
        for c in 0..s.cin {
            let plane = &x[(image * s.cin + c) * h * wd..][..h * wd];
            for (y, row) in plane.chunks_exact(wd).enumerate() {
                padded[(y + 1) * pw + 1..][..wd].copy_from_slice(row);
            }
            for ty in 0..th {
                let rows = &padded[2 * ty * pw..][..4 * pw];
                let first = c * tiles + image * th * tw + ty * tw;
                // SAFETY: `transform_row` was picked for the CPU's SIMD level.
                unsafe { transform_row(rows, tw, v, s.cin * tiles, first) };
            }
        }
    }
}

/// Mask of the first `n` of 16 lanes.
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 { 0xffff } else { (1u16 << n) - 1 }
}

/// `V = Bᵀ d B` for the `n` tiles of one row of tiles, from its four padded input rows
/// (`rows`: 4 rows of `2·n + 2` values) into `v[e·plane + first + tx]`, sixteen tiles at a
/// time and all in registers (the rows of small maps, 8-14 values, are too short for the
/// compiler's vector loops). `Bᵀ` first combines the rows element by element,
/// `t = [d0 − d2, d1 + d2, d2 − d1, d1 − d3]`; then tile `tx` of each combined row gets
/// `[t₀ − t₂, t₁ + t₂, t₂ − t₁, t₁ − t₃]` of `t[2tx .. 2tx + 4]`, the even and odd values
/// split out by two permutes.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn transform_tile_row(rows: &[f32], n: usize, v: &mut [f32], plane: usize, first: usize) {
    let pw = 2 * n + 2;
    assert!(rows.len() == 4 * pw && (E - 1) * plane + first + n <= v.len());
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for tx in (0..n).step_by(LANES) {
        // The combined rows from values 2tx, 2tx + 16, 2tx + 2 and 2tx + 18 on (the pairs
        // that the permutes below split); masks keep every load inside its row, and
        // wrapping_add only forms the addresses of loads whose mask is empty. Plain loops,
        // not closures: a closure is not inlined here and moved the registers through memory.
        let mut t = [[_mm512_setzero_ps(); 4]; 4];
        for (slot, from) in [0, 16, 2, 18].into_iter().enumerate() {
            let m = lanes((pw - 2 * tx).saturating_sub(from));
            let mut dv = [_mm512_setzero_ps(); 4];
            for (r, value) in dv.iter_mut().enumerate() {
                let start = rows.as_ptr().wrapping_add(r * pw + 2 * tx + from);
                // SAFETY: lanes under the mask are inside row r; the others are not read.
                *value = unsafe { _mm512_maskz_loadu_ps(m, start) };
            }
            let [d0, d1, d2, d3] = dv;
            t[slot] = [
                _mm512_sub_ps(d0, d2),
                _mm512_add_ps(d1, d2),
                _mm512_sub_ps(d2, d1),
                _mm512_sub_ps(d1, d3),
            ];
        }
        let [lo, hi, lo2, hi2] = t;
        let m = lanes(n - tx);
        for i in 0..4 {
            let p0 = _mm512_permutex2var_ps(lo[i], even, hi[i]); // t[2tx + 2k]
            let p1 = _mm512_permutex2var_ps(lo[i], odd, hi[i]); // t[2tx + 2k + 1]
            let q0 = _mm512_permutex2var_ps(lo2[i], even, hi2[i]); // t[2tx + 2k + 2]
            let q1 = _mm512_permutex2var_ps(lo2[i], odd, hi2[i]); // t[2tx + 2k + 3]
            let values = [
                _mm512_sub_ps(p0, q0),
                _mm512_add_ps(p1, q0),
                _mm512_sub_ps(q0, p1),
                _mm512_sub_ps(p1, q1),
            ];
            for (j, value) in values.into_iter().enumerate() {
                let at = (4 * i + j) * plane + first + tx;
                // SAFETY: lanes under the mask end at (4i + j)·plane + first + n ≤ v.len()
                // (checked above).
                unsafe { _mm512_mask_storeu_ps(v.as_mut_ptr().add(at), m, value) };
            }
        }
    }
}

/// The first `n` of 8 lanes, as a mask for AVX2's masked loads.
#[target_feature(enable = "avx2")]
fn lanes8(n: usize) -> __m256i {
    let index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), index)
}

/// Stores the first `k` lanes of `value` (all 8 when `k ≥ 8`) at `to`, in pieces of 4, 2
/// and 1. Not a masked store: AMD's Zen 1-3 run `vmaskmovps` stores as microcode (about 12
/// cycles each), and with them the input transform took 11 % of a `ferrite` training step
/// on a Zen 3, where the rows of 3-12 tiles leave most stores partial.
///
/// # Safety
/// `to` must be valid for writing `min(k, 8)` values.
#[target_feature(enable = "avx2")]
unsafe fn store_first8(to: *mut f32, value: __m256, k: usize) {
    // SAFETY (whole body): each store writes lanes below min(k, 8) only.
    unsafe {
        if k >= 8 {
            return _mm256_storeu_ps(to, value);
        }
        let (mut part, mut at, mut left) = (_mm256_castps256_ps128(value), to, k);
        if left >= 4 {
            _mm_storeu_ps(at, part);
            (part, at, left) = (_mm256_extractf128_ps::<1>(value), at.add(4), left - 4);
        }
        if left >= 2 {
            _mm_storel_epi64(at.cast(), _mm_castps_si128(part));
            (part, at, left) = (_mm_movehl_ps(part, part), at.add(2), left - 2);
        }
        if left == 1 {
            _mm_store_ss(at, part);
        }
    }
}

/// Values `[0, 2, 4, …, 14]` of the 16 in `lo` then `hi` (`odd`: `[1, 3, …, 15]`).
#[target_feature(enable = "avx2")]
fn split8(lo: __m256, hi: __m256, odd: bool) -> __m256 {
    // Within each 128-bit half: two values of lo, two of hi; then the halves' pairs in order.
    let mixed = if odd {
        _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi)
    } else {
        _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi)
    };
    _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
        mixed,
    )))
}

/// [`transform_tile_row`] in AVX2: eight tiles at a time.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_tile_row_avx2(
    rows: &[f32],
    n: usize,
    v: &mut [f32],
    plane: usize,
    first: usize,
) {
    const W: usize = 8;
    let pw = 2 * n + 2;
    assert!(rows.len() == 4 * pw && (E - 1) * plane + first + n <= v.len());
    for tx in (0..n).step_by(W) {
        let mut t = [[_mm256_setzero_ps(); 4]; 4];
        for (slot, from) in [0, W, 2, W + 2].into_iter().enumerate() {
            let m = lanes8((pw - 2 * tx).saturating_sub(from));
            let mut dv = [_mm256_setzero_ps(); 4];
            for (r, value) in dv.iter_mut().enumerate() {
                let start = rows.as_ptr().wrapping_add(r * pw + 2 * tx + from);
                // SAFETY: lanes under the mask are inside row r; the others are not read.
                *value = unsafe { _mm256_maskload_ps(start, m) };
            }
            let [d0, d1, d2, d3] = dv;
            t[slot] = [
                _mm256_sub_ps(d0, d2),
                _mm256_add_ps(d1, d2),
                _mm256_sub_ps(d2, d1),
                _mm256_sub_ps(d1, d3),
            ];
        }
        let [lo, hi, lo2, hi2] = t;
        for i in 0..4 {
            let p0 = split8(lo[i], hi[i], false);
            let p1 = split8(lo[i], hi[i], true);
            let q0 = split8(lo2[i], hi2[i], false);
            let q1 = split8(lo2[i], hi2[i], true);
            let values = [
                _mm256_sub_ps(p0, q0),
                _mm256_add_ps(p1, q0),
                _mm256_sub_ps(q0, p1),
                _mm256_sub_ps(p1, q1),
            ];
            for (j, value) in values.into_iter().enumerate() {
                let at = (4 * i + j) * plane + first + tx;
                // SAFETY: the first n − tx lanes end at (4i + j)·plane + first + n ≤ v.len().
                unsafe { store_first8(v.as_mut_ptr().add(at), value, n - tx) };
            }
        }
    }
}

crate::compiled_for_level! {
    /// `y = Aᵀ M A` for tiles `tiles` (numbered across the chunk's images) and output channels
    /// `channels` (one block: lane `o − channels.start` of `m[e][tile − tiles.start]`), into
    /// the chunk's output planes. `Aᵀ = [1 1 1 0; 0 1 −1 −1]`; tiles past an odd edge drop their
    /// last row or column. The transform runs on all lanes of a tile at once (it vectorises),
    /// then each channel's 2x2 outputs go to its plane.
    fn transform_outputs(
        s: &ConvShape,
        m: &[[[f32; 2 * LANES]; 12]; E],
        tiles: std::ops::Range<usize>,
        channels: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        let (h, wd) = (s.h, s.w);
        let (th, tw) = tile_grid(s);
        let per_image = th * tw;
        for (p, t) in tiles.enumerate() {
            let (image, ty, tx) = (t / per_image, (t % per_image) / tw, t % tw);
            // Aᵀ on the columns of the 4x4 tile, then on the rows: y[i][j] for every lane.
            let mut r = [[[0.0f32; 2 * LANES]; 4]; 2];
            for j in 0..4 {
                let (m0, m1, m2, m3) = (&m[j][p], &m[4 + j][p], &m[8 + j][p], &m[12 + j][p]);
                for lane in 0..2 * LANES {
                    r[0][j][lane] = m0[lane] + m1[lane] + m2[lane];
                    r[1][j][lane] = m1[lane] - m2[lane] - m3[lane];
                }
            }
            let mut y = [[[0.0f32; 2 * LANES]; 2]; 2];
            for i in 0..2 {
                let [r0, r1, r2, r3] = &r[i];
                for lane in 0..2 * LANES {
                    y[i][0][lane] = r0[lane] + r1[lane] + r2[lane];
                    y[i][1][lane] = r1[lane] - r2[lane] - r3[lane];
                }
            }
            let (y0, x0) = (2 * ty, 2 * tx);
            let (rows, cols) = ((h - y0).min(2), (wd - x0).min(2));
            for (lane, o) in channels.clone().enumerate() {
                let plane = &mut out[(image * s.cout + o) * h * wd..][..h * wd];
                for (i, yi) in y.iter().enumerate().take(rows) {
                    for (j, yij) in yi.iter().enumerate().take(cols) {
                        plane[(y0 + i) * wd + x0 + j] = yij[lane];
                    }
                }
            }
        }
    }
}

/// Whether [`weight_grad`] is the faster weight gradient for `s`: on maps of at most 12x12
/// with at most 192 channels either way (`ferrite`'s deep layers: 96→96 at 12x12 9.8 → 7.2
/// ms, 192→192 at 6x6 10.4 → 8.4 ms per batch of 64, against im2col + multiply). On larger
/// maps and VGG13's 256 channels im2col + multiply was as fast or faster (64→64 at 48x48:
/// 74 against 94 ms). Where the direct weight gradient ([`crate::direct_grad`], AVX-512)
/// serves too, only on 12x12 maps with 64+ input channels, where each image has 36 tiles
/// to spread the transforms over: on 6x6 maps (9 tiles) and with 32 input channels the
/// direct form was faster (docs/performance.md, run L).
pub fn weight_grad_applies(s: &ConvShape) -> bool {
    applies(s)
        && s.h * s.w <= 144
        && s.cin.max(s.cout) <= 192
        && (!crate::direct_grad::applies(s) || (s.h * s.w >= 144 && s.cin >= 64))
}

/// The weight gradient of the convolution, given its input `x` and output gradient `g`, as
/// `[cout, cin, 3, 3]`.
///
/// The forward pass is `y = Aᵀ (U ⊙ V) A` per tile with `U = G w Gᵀ`, so the gradient of
/// the kernels is `Gᵀ Z G` with `Z[e] = Σ_tiles (A g Aᵀ)[e] · V[e]`, summed over all tiles
/// of the batch: 16 products `(cout x tiles) · (tiles x cin)`, whose long side is the one
/// summed over, on the `gemm` crate.
///
/// # Panics
/// If [`weight_grad_applies`] is false for `s`.
pub fn weight_grad(s: &ConvShape, x: &[f32], g: &[f32]) -> Vec<f32> {
    assert!(
        weight_grad_applies(s),
        "winograd weight gradient: unsupported shape or CPU"
    );
    let (cin, cout) = (s.cin, s.cout);
    let positions = s.h * s.w;
    let (th, tw) = tile_grid(s);
    let tiles_per_image = th * tw;
    let chunk = images_per_chunk(s, tiles_per_image);
    let z = x
        .par_chunks(chunk * cin * positions)
        .zip(g.par_chunks(chunk * cout * positions))
        .fold(
            || vec![0.0f32; E * cout * cin],
            |mut z, (x, g)| {
                let n = x.len() / (cin * positions);
                let tiles = n * tiles_per_image;
                with_scratch(|sc| {
                    let v = resized(&mut sc.col, E * cin * tiles);
                    let gt = resized(&mut sc.dcol, E * cout * tiles);
                    transform_inputs(s, x, n, v, &mut sc.padded);
                    transform_grads(s, g, n, gt, &mut sc.grouped);
                    for e in 0..E {
                        matmul(
                            &mut z[e * cout * cin..],
                            cin,
                            MatRef::rows(&gt[e * cout * tiles..], cout, tiles),
                            MatRef::transposed(&v[e * cin * tiles..], cin, tiles),
                            true,
                        );
                    }
                });
                z
            },
        )
        .reduce(|| vec![0.0f32; E * cout * cin], crate::conv::summed);
    // Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1], on the columns of each 4x4 Z, then the rows.
    let mut dw = vec![0.0f32; cout * cin * 9];
    for o in 0..cout {
        for c in 0..cin {
            let at = |i: usize, j: usize| z[((i * 4 + j) * cout + o) * cin + c];
            // Column j of Gᵀ Z.
            let columns: [[f32; 3]; 4] = std::array::from_fn(|j| {
                let (z0, z1, z2, z3) = (at(0, j), at(1, j), at(2, j), at(3, j));
                [z0 + 0.5 * (z1 + z2), 0.5 * (z1 - z2), 0.5 * (z1 + z2) + z3]
            });
            let kernel = &mut dw[(o * cin + c) * 9..][..9];
            for i in 0..3 {
                let [t0, t1, t2, t3] = columns.map(|column| column[i]);
                kernel[i * 3] = t0 + 0.5 * (t1 + t2);
                kernel[i * 3 + 1] = 0.5 * (t1 - t2);
                kernel[i * 3 + 2] = 0.5 * (t1 + t2) + t3;
            }
        }
    }
    dw
}

crate::compiled_for_level! {
    /// `A g Aᵀ` for every 2x2 tile `g` of the output gradient of the `n` images in `g`, as
    /// `[16][cout][tiles]` (tiles numbered as in [`transform_inputs`]); outputs past an odd edge
    /// count as zero. `A = [1 0; 1 1; 1 −1; 0 −1]`.
    ///
    /// One output channel at a time: its values are first sorted into four planes, the
    /// corners `[a b; c d]` of every tile of its `n` images (`corners`, zero past an odd
    /// edge), so that each of the 16 outputs is one loop over all its tiles, contiguous in
    /// `gt`, that vectorises (the rows of small maps, 3-12 tiles, are too short for it).
    fn transform_grads(s: &ConvShape, g: &[f32], n: usize, gt: &mut [f32], corners: &mut Vec<f32>) {
        let (h, wd) = (s.h, s.w);
        let (th, tw) = tile_grid(s);
        let tiles = n * th * tw;
        // Every channel fills the same places, so those past an odd edge stay zero.
        corners.clear();
        corners.resize(4 * tiles, 0.0);
        let (top, bottom) = corners.split_at_mut(2 * tiles);
        let ((a, b), (c, d)) = (top.split_at_mut(tiles), bottom.split_at_mut(tiles));
        for o in 0..s.cout {
            for image in 0..n {
                let plane = &g[(image * s.cout + o) * h * wd..][..h * wd];
                for (y, row) in plane.chunks_exact(wd).enumerate() {
                    let first = image * th * tw + y / 2 * tw;
                    let (left, right) = if y % 2 == 0 { (&mut *a, &mut *b) } else { (&mut *c, &mut *d) };
                    let pairs = row.chunks_exact(2);
                    if let [last] = pairs.remainder() {
                        left[first + tw - 1] = *last;
                    }
                    for (tx, pair) in pairs.enumerate() {
                        left[first + tx] = pair[0];
                        right[first + tx] = pair[1];
                    }
                }
            }
            // Output k = 4i + j is row i, column j of `A g Aᵀ`: `A[j]·(p, q)` with
            // `p = A[i]·(a, c)`, `q = A[i]·(b, d)`. The multiplications by 1, −1 and 0 are
            // exact, so this gives the values of the 16 sums written out (up to the sign of a
            // zero).
            const A: [[f32; 2]; 4] = [[1.0, 0.0], [1.0, 1.0], [1.0, -1.0], [0.0, -1.0]];
            for k in 0..E {
                let ([i0, i1], [j0, j1]) = (A[k / 4], A[k % 4]);
                let out = &mut gt[(k * s.cout + o) * tiles..][..tiles];
                let corners = a.iter().zip(&*b).zip(c.iter().zip(&*d));
                for (out, ((a, b), (c, d))) in out.iter_mut().zip(corners) {
                    let (p, q) = (i0 * a + i1 * c, i0 * b + i1 * d);
                    *out = j0 * p + j1 * q;
                }
            }
        }
    }
}
