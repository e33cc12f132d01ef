//! The weight gradient of 3x3 convolutions (stride 1, padding 1), direct, with AVX-512:
//! vector lanes over input channels, read from a channels-last copy of the input.
//!
//! Why: `dW[o, c, ky, kx] = Σ_{n, y, x} g[n, o, y, x] · x[n, c, y + ky − 1, x + kx − 1]` sums
//! over every position of every image. As im2col + multiply that writes a patch matrix nine
//! times the input's size and packs it again (on VGG13's 256→256 at 12x12, 340 MB per batch
//! of 64), and Winograd's form spends transforms on maps of only 9 tiles per image (6x6).
//! Here each block of 16 input channels is copied, a few images at a time, to
//! `[n][y][x][16]` with a zero border, so the 16 channels of one position are one aligned
//! vector load and the three taps of a kernel row are three neighbouring positions. A
//! register tile holds 4 output channels x 3 taps x 16 input channels (12 sums): per
//! position it loads 3 input vectors, broadcasts 4 gradient values and does 12 fused
//! multiply-adds, with no horizontal sums and no lane wasted on padding, on any map size.
//! (An AVX2 version, whose 16 registers of 8 lanes hold only 2 output channels x 3 taps,
//! was slower than Winograd's form and im2col on most shapes: docs/performance.md, run L.)
//!
//! Needs input channels in multiples of 16: every layer of `ferrite` and VGG13 but the
//! first (one channel, whose im2col patches are only 9 long and as fast).
//!
//! An earlier direct form ran its vectors along the rows of each plane (dot products of
//! shifted planes); it won only on narrow layers of large maps, and this one matched or
//! beat it there too (docs/performance.md, run L), so it was removed.

use std::arch::x86_64::*;

use rayon::prelude::*;

use crate::conv::ConvShape;
use crate::direct::LANES;
use crate::simd::{Simd, level};

/// Input bytes one pass over a chunk of images keeps at hand: the chunk's channels-last
/// input for one block of 16 channels is read again by every tile (each 4 output channels
/// x kernel row), so it should stay in the core's L1 and L2.
const CHUNK_BYTES: usize = 64 * 1024;

/// Whether [`weight_grad`] serves this convolution: 3x3, stride 1, padding 1, input
/// channels a multiple of 16, with AVX-512.
pub fn applies(s: &ConvShape) -> bool {
    s.kh == 3
        && s.kw == 3
        && s.stride == [1, 1]
        && s.padding == [1, 1]
        && s.cin.is_multiple_of(LANES)
        && s.cin > 0
        && level() == Some(Simd::Avx512)
}

/// The weight gradient of the convolution, given its input `x` and output gradient `g`, as
/// `[cout, cin, 3, 3]`.
///
/// Blocks of 16 input channels run in parallel. Each copies its channels of a chunk of
/// images to channels-last just before its tiles read them, so the copy is still in cache
/// and no batch-sized buffer is allocated.
///
/// # Panics
/// If [`applies`] is false for `s`.
pub fn weight_grad(s: &ConvShape, x: &[f32], g: &[f32]) -> Vec<f32> {
    assert!(
        applies(s),
        "channels-last weight gradient: unsupported shape or CPU"
    );
    let (cin, cout, h, w) = (s.cin, s.cout, s.h, s.w);
    assert_eq!(
        x.len(),
        s.batch * cin * h * w,
        "weight gradient: input size"
    );
    assert_eq!(
        g.len(),
        s.batch * cout * h * w,
        "weight gradient: gradient size"
    );
    if s.batch == 0 {
        return vec![0.0; cout * cin * 9];
    }
    let image = (h + 2) * (w + 2) * LANES;
    let per_chunk = (CHUNK_BYTES / (image * 4)).clamp(1, s.batch);
    // Units of parallel work: blocks of 16 input channels, each over a share of the batch.
    // With at least as many blocks as threads the share is the whole batch, so each sum is
    // made by one thread in one order; with fewer blocks than threads (16 input channels
    // on 2 cores) the batch is split and each block's partial sums added in a fixed order.
    let blocks = cin / LANES;
    let splits = rayon::current_num_threads().div_ceil(blocks).min(s.batch);
    let per_split = s.batch.div_ceil(splits);
    let parts: Vec<Vec<f32>> = (0..blocks * splits)
        .into_par_iter()
        .map_init(Vec::new, |buffer, unit| {
            let (b, split) = (unit / splits, unit % splits);
            let batch = (split * per_split).min(s.batch)..((split + 1) * per_split).min(s.batch);
            // Sums of this block: `[o][ky][kx][lane]`, lane = input channel b·16 + lane.
            let mut sums = vec![0.0f32; cout * 9 * LANES];
            for first in batch.clone().step_by(per_chunk) {
                let images = per_chunk.min(batch.end - first);
                let xt = channels_last_padded(s, x, first..first + images, b, buffer);
                let mut o = 0;
                while o < cout {
                    let rows = [4, 2, 1].into_iter().find(|&n| n <= cout - o).unwrap();
                    for ky in 0..3 {
                        let at = (o * 9 + ky * 3) * LANES;
                        // SAFETY: AVX-512 was detected in `applies`. The tile reads, for
                        // each of the `images` images, `rows` gradient planes from channel
                        // o (inside `g`) and the padded rows ky..ky + h of `xt` at
                        // columns 0..w + 2; it adds into `rows` x 9 x 16 sums from `at`.
                        unsafe {
                            tile_dispatch(
                                rows,
                                &xt[ky * (w + 2) * LANES..],
                                &g[(first * cout + o) * h * w..],
                                &mut sums[at..],
                                Geometry { images, h, w, cout },
                            )
                        }
                    }
                    o += rows;
                }
            }
            sums
        })
        .collect();
    let mut dw = vec![0.0f32; cout * cin * 9];
    let mut parts = parts.into_iter();
    for b in 0..blocks {
        let sums = parts
            .by_ref()
            .take(splits)
            .reduce(crate::conv::summed)
            .unwrap();
        for o in 0..cout {
            for t in 0..9 {
                for lane in 0..LANES {
                    dw[(o * cin + b * LANES + lane) * 9 + t] = sums[(o * 9 + t) * LANES + lane];
                }
            }
        }
    }
    dw
}

/// Input channels `16·b .. 16·b + 16` of `images` as `[n][h + 2][w + 2][16]` with a zero
/// border, in `buffer`, starting on a 64-byte boundary: every load of the tile is then one
/// whole cache line (a load that straddles two costs two).
fn channels_last_padded<'a>(
    s: &ConvShape,
    x: &[f32],
    images: std::ops::Range<usize>,
    b: usize,
    buffer: &'a mut Vec<f32>,
) -> &'a [f32] {
    let (h, w) = (s.h, s.w);
    let pw = w + 2;
    let image = (h + 2) * pw * LANES;
    let len = images.len() * image;
    if buffer.len() < len + LANES {
        // Grown with zeros; the border and its zeros are never written after.
        buffer.clear();
        buffer.resize(len + LANES, 0.0);
    }
    let skip = buffer.as_ptr().align_offset(64);
    let xt = &mut buffer[skip..][..len];
    // The tile's aligned loads rely on it.
    assert_eq!(
        xt.as_ptr() as usize % 64,
        0,
        "channels-last copy misaligned"
    );
    for (dst, n) in xt.chunks_exact_mut(image).zip(images) {
        for y in 0..h {
            // Each input row is read whole; the padded row it goes to (w · 16 values) is
            // in L1.
            let to = &mut dst[((y + 1) * pw + 1) * LANES..][..w * LANES];
            for lane in 0..LANES {
                let c = b * LANES + lane;
                for (xx, &v) in x[((n * s.cin + c) * h + y) * w..][..w].iter().enumerate() {
                    to[xx * LANES + lane] = v;
                }
            }
        }
    }
    xt
}

/// Sizes a tile walks over: `images` images of `h x w` positions (16 channels each in the
/// channels-last input), `cout` gradient planes per image.
#[derive(Clone, Copy)]
struct Geometry {
    images: usize,
    h: usize,
    w: usize,
    cout: usize,
}

/// Runs [`tile`] for `rows` (4, 2 or 1) output channels.
///
/// # Safety
/// AVX-512F must be available; `x`, `g` and `sums` must hold what [`tile`] reads and writes.
unsafe fn tile_dispatch(rows: usize, x: &[f32], g: &[f32], sums: &mut [f32], geo: Geometry) {
    let Geometry { images, h, w, cout } = geo;
    let image = (h + 2) * (w + 2) * LANES;
    debug_assert!(x.len() >= (images - 1) * image + ((h - 1) * (w + 2) + w + 2) * LANES);
    debug_assert!(g.len() >= ((images - 1) * cout + rows - 1) * h * w + h * w);
    debug_assert!(sums.len() >= ((rows - 1) * 9 + 3) * LANES);
    let (x, g, sums) = (x.as_ptr(), g.as_ptr(), sums.as_mut_ptr());
    // SAFETY: forwarded from the caller.
    unsafe {
        match rows {
            4 => tile::<4>(x, g, sums, geo),
            2 => tile::<2>(x, g, sums, geo),
            1 => tile::<1>(x, g, sums, geo),
            _ => unreachable!("no {rows}-channel gradient tile"),
        }
    }
}

/// For `R` output channels `r` and the three taps `kx` of one kernel row, adds
/// `Σ_{n, y, xx} g[n, r, y, xx] · x[n, y, xx + kx, 0..16]` (x: the padded channels-last
/// input from that kernel row on) to the 16 lanes of `sums[(r·9 + kx)·16..]`.
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize>(x: *const f32, g: *const f32, sums: *mut f32, geo: Geometry) {
    let Geometry { images, h, w, cout } = geo;
    let (row, image) = ((w + 2) * LANES, (h + 2) * (w + 2) * LANES);
    let plane = h * w;
    // SAFETY (whole body): every access is inside the bounds the caller guaranteed.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 3]; R];
        for (r, acc) in acc.iter_mut().enumerate() {
            for (kx, a) in acc.iter_mut().enumerate() {
                *a = _mm512_loadu_ps(sums.add((r * 9 + kx) * LANES));
            }
        }
        for n in 0..images {
            let (xn, gn) = (x.add(n * image), g.add(n * cout * plane));
            for y in 0..h {
                let (xr, gr) = (xn.add(y * row), gn.add(y * w));
                for xx in 0..w {
                    let xp = xr.add(xx * LANES);
                    let xv = [
                        _mm512_load_ps(xp),
                        _mm512_load_ps(xp.add(LANES)),
                        _mm512_load_ps(xp.add(2 * LANES)),
                    ];
                    #[allow(clippy::needless_range_loop)]
                    for r in 0..R {
                        let b = _mm512_set1_ps(*gr.add(r * plane + xx));
                        for kx in 0..3 {
                            acc[r][kx] = _mm512_fmadd_ps(b, xv[kx], acc[r][kx]);
                        }
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (kx, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(sums.add((r * 9 + kx) * LANES), *a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient straight from its definition, in f64.
    fn naive(s: &ConvShape, x: &[f32], g: &[f32]) -> Vec<f32> {
        let (cin, cout, h, w) = (s.cin, s.cout, s.h, s.w);
        let mut dw = vec![0.0f64; cout * cin * 9];
        for n in 0..s.batch {
            for o in 0..cout {
                for c in 0..cin {
                    for t in 0..9 {
                        let (ky, kx) = (t / 3, t % 3);
                        let mut sum = 0.0f64;
                        for y in 0..h {
                            for xx in 0..w {
                                let (iy, ix) = (y + ky, xx + kx);
                                if iy < 1 || ix < 1 || iy > h || ix > w {
                                    continue;
                                }
                                sum += g[((n * cout + o) * h + y) * w + xx] as f64
                                    * x[((n * cin + c) * h + iy - 1) * w + ix - 1] as f64;
                            }
                        }
                        dw[(o * cin + c) * 9 + t] += sum;
                    }
                }
            }
        }
        dw.into_iter().map(|v| v as f32).collect()
    }

    #[test]
    fn matches_the_definition_on_odd_sizes_and_channel_counts() {
        if level() != Some(Simd::Avx512) {
            eprintln!(
                "direct_grad test: SKIPPED (no AVX-512 on this CPU, or FERRITE_SIMD caps it)"
            );
            return;
        }
        // 7 output channels take the 4-, 2- and 1-channel tiles, on 5x3 maps, whose rows are
        // shorter than the tile's three taps' span; 80 channels make an odd number of
        // blocks; 12x13 maps take 4 images per chunk, so 11 images cross chunk boundaries,
        // and their one block of 16 channels is split over the batch on 2+ threads.
        for (batch, cin, cout, h, w) in [(9, 64, 7, 5, 3), (3, 80, 4, 6, 6), (11, 16, 1, 12, 13)] {
            let s = ConvShape {
                batch,
                cin,
                h,
                w,
                cout,
                kh: 3,
                kw: 3,
                stride: [1, 1],
                padding: [1, 1],
            };
            let x: Vec<f32> = (0..batch * cin * h * w)
                .map(|i| (i as f32 * 0.731).sin())
                .collect();
            let g: Vec<f32> = (0..batch * cout * h * w)
                .map(|i| (i as f32 * 0.377).cos())
                .collect();
            let want = naive(&s, &x, &g);
            let got = weight_grad(&s, &x, &g);
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 1e-5 * scale, "{s:?}: dw[{i}] {a} vs {b}");
            }
        }
    }
}
