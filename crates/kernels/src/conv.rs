//! 2-D convolution (one group) on contiguous NCHW f32 data: forward, and both gradients in
//! one pass.
//!
//! Why our own: burn's flex backend converts every conv input to NHWC and back, computes the
//! input gradient as a transposed convolution and the weight gradient as a convolution whose
//! "kernel" is the whole output-gradient image; on our 48x48 network those copies cost as much
//! as the multiplies. Here each step is one im2col copy and one matrix multiply in NCHW:
//!
//! - forward: `out[O, P] = W[O, K] · col[K, P]`
//! - weight gradient: `dW[O, K] += G[O, P] · colᵀ[P, K]`, summed over the batch
//! - input gradient: `dcol[K, P] = Wᵀ[K, O] · G[O, P]`, then col2im adds `dcol` back into `dx`
//!
//! with `K = Cin·kh·kw` and `P = OH·OW`. Small feature maps are batched: several images share
//! one im2col matrix so that the multiply has at least [`MIN_COLUMNS`] columns; large ones are
//! cut into bands of at most [`MAX_COLUMNS`]. Chunks of images run on rayon's threads; each
//! multiply is single-threaded.
//!
//! Where the CPU has AVX-512, the forward pass and the input gradient of 3x3 convolutions with
//! stride 1 and padding 1 (all of `ferrite`'s and `vgg13`'s but the first) run Winograd's
//! F(2x2, 3x3) ([`crate::winograd`], 32+ channels in and out) or the direct kernel of
//! [`crate::direct`] instead.

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use crate::gemm::{MatRef, matmul};

/// Fewest im2col columns per multiply: below this the multiply's packing and edge costs
/// dominate (the 6x6 maps of our last stage have 36 columns per image), so several images
/// share one multiply.
pub const MIN_COLUMNS: usize = 256;

/// Most im2col columns per multiply: a large map is cut into bands of output rows whose
/// patch matrix (`Cin·kh·kw` x columns) stays in the core's cache between im2col and the
/// multiply (a whole 48x48 map of 16 channels would be 1.3 MB).
pub const MAX_COLUMNS: usize = 512;

// A map is either batched (fewer positions than MIN_COLUMNS) or banded (more than
// MAX_COLUMNS), never both: `ungroup` and `group` take whole maps.
const _: () = assert!(MIN_COLUMNS <= MAX_COLUMNS);

/// Sizes of one convolution: input `[batch, cin, h, w]`, weight `[cout, cin, kh, kw]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl ConvShape {
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding[0] - self.kh) / self.stride[0] + 1
    }

    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding[1] - self.kw) / self.stride[1] + 1
    }

    /// Rows of the im2col matrix: one per weight of an output channel.
    fn patch(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// Output positions per image.
    fn positions(&self) -> usize {
        self.out_h() * self.out_w()
    }

    fn input_len(&self) -> usize {
        self.cin * self.h * self.w
    }

    fn output_len(&self) -> usize {
        self.cout * self.positions()
    }

    pub fn weight_len(&self) -> usize {
        self.cout * self.patch()
    }

    /// Images per unit of parallel work.
    fn images_per_chunk(&self) -> usize {
        MIN_COLUMNS
            .div_ceil(self.positions().max(1))
            .clamp(1, self.batch.max(1))
    }

    /// The bands of output rows one multiply covers: the whole map, or for large maps
    /// (then one image per chunk) bands of at most [`MAX_COLUMNS`] positions.
    fn bands(&self) -> impl Iterator<Item = Range<usize>> + use<> {
        let ow = self.out_w().max(1);
        let rows = if self.positions() > MAX_COLUMNS {
            (MAX_COLUMNS / ow).max(1)
        } else {
            self.out_h()
        };
        row_bands(self.out_h(), rows)
    }

    fn check(&self, x: &[f32], w: &[f32]) {
        assert!(
            self.h + 2 * self.padding[0] >= self.kh && self.w + 2 * self.padding[1] >= self.kw,
            "conv2d: kernel larger than the padded input"
        );
        assert!(
            self.stride[0] > 0 && self.stride[1] > 0,
            "conv2d: zero stride"
        );
        assert_eq!(x.len(), self.batch * self.input_len(), "conv2d: input size");
        assert_eq!(w.len(), self.weight_len(), "conv2d: weight size");
    }
}

/// Buffers one thread reuses from call to call, so that a training step does not fault in
/// fresh pages for every layer.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) col: Vec<f32>,
    pub(crate) padded: Vec<f32>,
    pub(crate) dcol: Vec<f32>,
    pub(crate) grouped: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Runs `f` with this thread's scratch buffers. The closures that call it run no rayon work
/// themselves, so a thread never re-enters it.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

pub(crate) fn resized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    v.resize(len, 0.0);
    &mut v[..len]
}

/// The convolution of `x` with `w` (no bias), as a new `[batch, cout, out_h, out_w]` buffer.
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32]) -> Vec<f32> {
    forward_with(s, x, w, &Epilogue::default())
}

/// What to do to each output value while it is still in cache: `v · scale + shift` per
/// channel, then clamp at zero. A bias is a shift; inference folds batch norm into a scale
/// and a shift, and so runs conv → batch norm → ReLU as one pass.
#[derive(Default)]
pub struct Epilogue<'a> {
    pub scale: Option<&'a [f32]>,
    pub shift: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    pub(crate) fn is_noop(&self) -> bool {
        self.scale.is_none() && self.shift.is_none() && !self.relu
    }

    /// Applies to the values of output channel `o`.
    pub(crate) fn apply(&self, o: usize, values: &mut [f32]) {
        let a = self.scale.map_or(1.0, |s| s[o]);
        let b = self.shift.map_or(0.0, |s| s[o]);
        if self.relu {
            values.iter_mut().for_each(|v| *v = (*v * a + b).max(0.0));
        } else if !self.is_noop() {
            values.iter_mut().for_each(|v| *v = *v * a + b);
        }
    }
}

/// Which implementation runs a convolution (its forward pass) on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// [`crate::winograd`]: 3x3, stride 1, padding 1, 32+ channels in and out, AVX-512/AVX2.
    #[cfg(target_arch = "x86_64")]
    Winograd,
    /// [`crate::direct`]: 3x3, stride 1, padding 1, 8+ input channels, AVX-512/AVX2.
    #[cfg(target_arch = "x86_64")]
    Direct,
    /// im2col + multiply: every other shape and CPU.
    Im2col,
}

fn path(s: &ConvShape) -> Path {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::winograd::applies(s) {
            return Path::Winograd;
        }
        if crate::direct::applies(s) {
            return Path::Direct;
        }
    }
    Path::Im2col
}

/// [`forward`] with an [`Epilogue`] fused into the output pass.
pub fn forward_with(s: &ConvShape, x: &[f32], w: &[f32], epilogue: &Epilogue) -> Vec<f32> {
    s.check(x, w);
    for v in [epilogue.scale, epilogue.shift].into_iter().flatten() {
        assert_eq!(
            v.len(),
            s.cout,
            "conv2d: one scale and shift per output channel"
        );
    }
    match path(s) {
        #[cfg(target_arch = "x86_64")]
        Path::Winograd => return crate::winograd::forward(s, x, w, epilogue),
        #[cfg(target_arch = "x86_64")]
        Path::Direct => return crate::direct::forward(s, x, w, epilogue),
        Path::Im2col => {}
    }
    forward_im2col(s, x, w, epilogue)
}

/// [`forward_with`] as im2col + multiply.
fn forward_im2col(s: &ConvShape, x: &[f32], w: &[f32], epilogue: &Epilogue) -> Vec<f32> {
    let (k, p, ow) = (s.patch(), s.positions(), s.out_w());
    let chunk = s.images_per_chunk();
    let threads = rayon::current_num_threads();
    if s.batch < threads && s.batch.div_ceil(chunk) < threads {
        return forward_few(s, x, w, epilogue, threads);
    }
    let mut out = vec![0.0f32; s.batch * s.output_len()];
    let weights = MatRef::rows(w, s.cout, k);
    out.par_chunks_mut(chunk * s.output_len())
        .zip(x.par_chunks(chunk * s.input_len()))
        .for_each(|(out, x)| {
            let n = x.len() / s.input_len();
            with_scratch(|sc| {
                for rows in s.bands() {
                    let cols = n * rows.len() * ow;
                    let col = resized(&mut sc.col, k * cols);
                    im2col(s, x, n, rows.clone(), col, &mut sc.padded);
                    let col = MatRef::rows(col, k, cols);
                    if n == 1 {
                        let start = rows.start * ow;
                        multiply(&mut out[start..], p, weights, 0, col, epilogue);
                    } else {
                        let grouped = resized(&mut sc.grouped, s.cout * cols);
                        multiply(grouped, cols, weights, 0, col, epilogue);
                        ungroup(grouped, out, s.cout, n, p);
                    }
                }
            })
        });
    out
}

/// [`forward_with`] for fewer images than threads (batch-1 inference): each image's
/// multiply is split across the threads, so that every core takes part.
///
/// Every piece of a split multiply packs its whole share of both operands, so the split
/// goes along the larger dimension: bands of output rows when the map has more positions
/// than the layer has output channels (early layers), else ranges of output channels over
/// the whole map (deep layers, where the weights are megabytes and positions few).
fn forward_few(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    epilogue: &Epilogue,
    threads: usize,
) -> Vec<f32> {
    let (k, p, oh, ow) = (s.patch(), s.positions(), s.out_h(), s.out_w());
    let mut out = vec![0.0f32; s.batch * s.output_len()];
    for (x, out) in x.chunks(s.input_len()).zip(out.chunks_mut(s.output_len())) {
        if s.cout <= p {
            // A multiple of `threads` bands of at most MAX_COLUMNS, so that no core idles
            // while the other finishes an odd band.
            let bands = threads * p.div_ceil(threads * MAX_COLUMNS);
            let pieces: Vec<(Range<usize>, Vec<f32>)> = row_bands(oh, oh.div_ceil(bands))
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|rows| {
                    let cols = rows.len() * ow;
                    let mut piece = vec![0.0f32; s.cout * cols];
                    with_scratch(|sc| {
                        let col = resized(&mut sc.col, k * cols);
                        im2col(s, x, 1, rows.clone(), col, &mut sc.padded);
                        let weights = MatRef::rows(w, s.cout, k);
                        let col = MatRef::rows(col, k, cols);
                        multiply(&mut piece, cols, weights, 0, col, epilogue);
                    });
                    (rows, piece)
                })
                .collect();
            for (rows, piece) in pieces {
                let cols = rows.len() * ow;
                for o in 0..s.cout {
                    out[o * p + rows.start * ow..][..cols]
                        .copy_from_slice(&piece[o * cols..][..cols]);
                }
            }
        } else {
            // One im2col of the whole map, shared; each thread multiplies its channels
            // straight into their (contiguous) rows of the output.
            let mut col = vec![0.0f32; k * p];
            col.par_chunks_mut(s.kh * s.kw * p)
                .enumerate()
                .for_each_init(Vec::new, |padded, (c, dst)| {
                    im2col_channel(s, x, 1, 0..oh, c, dst, padded)
                });
            let col = MatRef::rows(&col, k, p);
            let per_thread = s.cout.div_ceil(threads);
            out.par_chunks_mut(per_thread * p)
                .enumerate()
                .for_each(|(i, out)| {
                    let first = i * per_thread;
                    let n = out.len() / p;
                    let weights = MatRef::rows(&w[first * k..], n, k);
                    multiply(out, p, weights, first, col, epilogue);
                });
        }
    }
    out
}

/// `W · col` into `dst` (row `o` at `dst[o · stride..]`) with the epilogue applied while the
/// rows are in cache; `weights` are output channels `first..` of the layer, whose scale and
/// shift the epilogue takes.
fn multiply(
    dst: &mut [f32],
    stride: usize,
    weights: MatRef,
    first: usize,
    col: MatRef,
    epilogue: &Epilogue,
) {
    matmul(dst, stride, weights, col, false);
    if !epilogue.is_noop() {
        for o in 0..weights.rows {
            epilogue.apply(first + o, &mut dst[o * stride..][..col.cols]);
        }
    }
}

/// Gradients of [`forward`] given the output gradient `g`: `(dx, dw)`. `dx` is skipped
/// (returned empty) when `need_dx` is false, as for a network's first layer.
pub fn backward(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    g: &[f32],
    need_dx: bool,
) -> (Vec<f32>, Vec<f32>) {
    s.check(x, w);
    assert_eq!(
        g.len(),
        s.batch * s.output_len(),
        "conv2d backward: gradient size"
    );
    // For 3x3, stride 1, padding 1 the input gradient is a forward pass of `g` (see
    // `turned_and_swapped`), which the Winograd or direct kernel runs where it applies; the
    // weight gradient has a Winograd form (the deep layers of 12x12 maps, or of small maps
    // without AVX-512) and a direct one (16n input channels, AVX-512). What is left goes
    // through im2col.
    #[cfg(target_arch = "x86_64")]
    {
        let dw = if crate::winograd::weight_grad_applies(s) {
            Some(crate::winograd::weight_grad(s, x, g))
        } else if crate::direct_grad::applies(s) {
            Some(crate::direct_grad::weight_grad(s, x, g))
        } else {
            None
        };
        if let Some(dw) = dw {
            let dx = if need_dx {
                input_grad(s, w, g)
            } else {
                Vec::new()
            };
            return (dx, dw);
        }
    }
    if need_dx && path(&transposed(s)) != Path::Im2col {
        return (input_grad(s, w, g), backward_im2col(s, x, w, g, false).1);
    }
    backward_im2col(s, x, w, g, need_dx)
}

/// Two partial sums of a weight gradient (or of Winograd's transformed one), added: how
/// each weight gradient's parallel fold over chunks of images is reduced.
pub(crate) fn summed(mut a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
    a
}

/// The input gradient of a 3x3, stride-1, padding-1 convolution as a forward pass of `g`.
fn input_grad(s: &ConvShape, w: &[f32], g: &[f32]) -> Vec<f32> {
    forward_with(
        &transposed(s),
        g,
        &turned_and_swapped(s, w),
        &Epilogue::default(),
    )
}

/// The convolution whose forward pass is the input gradient of `s` (3x3, stride 1, padding
/// 1): input and output channels swapped.
pub(crate) fn transposed(s: &ConvShape) -> ConvShape {
    ConvShape {
        cin: s.cout,
        cout: s.cin,
        ..*s
    }
}

/// The kernels of [`transposed`]`(s)`: each turned 180 degrees, `[cout, cin, 3, 3]` →
/// `[cin, cout, 3, 3]`. With them, the input gradient of a 3x3, stride-1, padding-1
/// convolution is a forward pass of the output gradient.
pub(crate) fn turned_and_swapped(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let turned = crate::depthwise::turned(w, 9);
    let mut swapped = vec![0.0f32; w.len()];
    for o in 0..s.cout {
        for c in 0..s.cin {
            swapped[(c * s.cout + o) * 9..][..9]
                .copy_from_slice(&turned[(o * s.cin + c) * 9..][..9]);
        }
    }
    swapped
}

/// [`backward`] as im2col + multiply (weight gradient) and multiply + col2im (input gradient).
fn backward_im2col(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    g: &[f32],
    need_dx: bool,
) -> (Vec<f32>, Vec<f32>) {
    let (k, p, ow) = (s.patch(), s.positions(), s.out_w());
    let chunk = s.images_per_chunk();
    let mut dx = vec![0.0f32; if need_dx { x.len() } else { 0 }];
    // With no dx to fill, still hand each chunk a (zero-length) slot so one loop serves both.
    let mut dx_slots: Vec<&mut [f32]> = if need_dx {
        dx.chunks_mut(chunk * s.input_len()).collect()
    } else {
        (0..s.batch.div_ceil(chunk)).map(|_| &mut [][..]).collect()
    };
    let w_t = MatRef::transposed(w, s.cout, k);
    let dw = dx_slots
        .par_iter_mut()
        .zip(x.par_chunks(chunk * s.input_len()))
        .zip(g.par_chunks(chunk * s.output_len()))
        .fold(
            || vec![0.0f32; s.weight_len()],
            |mut dw, ((dx, x), g)| {
                let n = x.len() / s.input_len();
                with_scratch(|sc| {
                    for rows in s.bands() {
                        let cols = n * rows.len() * ow;
                        let col = resized(&mut sc.col, k * cols);
                        im2col(s, x, n, rows.clone(), col, &mut sc.padded);
                        // The output gradient of these positions as a [cout, cols] matrix.
                        let g_mat = if n == 1 {
                            MatRef {
                                data: &g[rows.start * ow..],
                                rows: s.cout,
                                cols,
                                row_stride: p,
                                col_stride: 1,
                            }
                        } else {
                            let grouped = resized(&mut sc.grouped, s.cout * cols);
                            group(g, grouped, s.cout, n, p);
                            MatRef::rows(grouped, s.cout, cols)
                        };
                        matmul(&mut dw, k, g_mat, MatRef::transposed(col, k, cols), true);
                        if !dx.is_empty() {
                            let dcol = resized(&mut sc.dcol, k * cols);
                            matmul(dcol, cols, w_t, g_mat, false);
                            col2im(s, dcol, n, rows, dx);
                        }
                    }
                });
                dw
            },
        )
        .reduce(|| vec![0.0f32; s.weight_len()], summed);
    (dx, dw)
}

/// Fills `col` (`[cin·kh·kw, n·rows·OW]`, row-major) with the patches of output rows `rows`
/// of the `n` images in `x`: row `(c, ky, kx)`, column `(image, oy, ox)` holds
/// `x[image, c, oy·sy + ky − py, ox·sx + kx − px]`, zero outside the image. `padded` is
/// scratch space.
fn im2col(
    s: &ConvShape,
    x: &[f32],
    n: usize,
    rows: Range<usize>,
    col: &mut [f32],
    padded: &mut Vec<f32>,
) {
    let per_channel = s.kh * s.kw * n * rows.len() * s.out_w();
    for (c, dst) in col.chunks_exact_mut(per_channel).take(s.cin).enumerate() {
        im2col_channel(s, x, n, rows.clone(), c, dst, padded);
    }
}

/// The `kh·kw` rows of [`im2col`]'s matrix that input channel `c` fills.
///
/// The input rows the band reads are first copied into `padded` with a border of zeros, so
/// that each patch row is a single copy. Zeroing the one or two padding values at each end
/// of every patch row instead cost as much as the copies: each was a call to `memset`.
fn im2col_channel(
    s: &ConvShape,
    x: &[f32],
    n: usize,
    rows: Range<usize>,
    c: usize,
    dst_rows: &mut [f32],
    padded: &mut Vec<f32>,
) {
    let (ow, [sy, sx], [py, px]) = (s.out_w(), s.stride, s.padding);
    let per_image = rows.len() * ow;
    let row_len = n * per_image;
    // Padded input rows `first..first + in_rows` feed output rows `rows`.
    let first = rows.start * sy;
    let in_rows = (rows.len().max(1) - 1) * sy + s.kh;
    let width = s.w + 2 * px;
    for image in 0..n {
        let plane = &x[(image * s.cin + c) * s.h * s.w..][..s.h * s.w];
        padded.clear();
        padded.resize(in_rows * width, 0.0);
        for (r, dst) in padded.chunks_exact_mut(width).enumerate() {
            if let Some(iy) = (first + r).checked_sub(py).filter(|&iy| iy < s.h) {
                dst[px..][..s.w].copy_from_slice(&plane[iy * s.w..][..s.w]);
            }
        }
        for ky in 0..s.kh {
            for kx in 0..s.kw {
                let dst_row = &mut dst_rows[(ky * s.kw + kx) * row_len..][..row_len];
                let dst = &mut dst_row[image * per_image..][..per_image];
                for (r, out) in dst.chunks_exact_mut(ow).enumerate() {
                    let src = &padded[(r * sy + ky) * width + kx..];
                    if sx == 1 {
                        out.copy_from_slice(&src[..ow]);
                    } else {
                        out.iter_mut()
                            .zip(src.iter().step_by(sx))
                            .for_each(|(o, v)| *o = *v);
                    }
                }
            }
        }
    }
}

/// The inverse scatter of [`im2col`]: adds every entry of `col` into the input position it was
/// read from. `dx` holds `n` images and must start zeroed.
fn col2im(s: &ConvShape, col: &[f32], n: usize, rows: Range<usize>, dx: &mut [f32]) {
    let ow = s.out_w();
    let per_image = rows.len() * ow;
    let row_len = n * per_image;
    for c in 0..s.cin {
        for ky in 0..s.kh {
            for kx in 0..s.kw {
                let row = (c * s.kh + ky) * s.kw + kx;
                let src_row = &col[row * row_len..(row + 1) * row_len];
                let span = Span::new(s, kx);
                for image in 0..n {
                    let plane = &mut dx[(image * s.cin + c) * s.h * s.w..][..s.h * s.w];
                    let src = &src_row[image * per_image..(image + 1) * per_image];
                    for (oy, src) in rows.clone().zip(src.chunks_exact(ow)) {
                        if let Some(iy) = source_row(s, oy, ky) {
                            span.add(src, &mut plane[iy * s.w..(iy + 1) * s.w]);
                        }
                    }
                }
            }
        }
    }
}

/// `0..oh` cut into bands of `rows` output rows (the last may be shorter).
fn row_bands(oh: usize, rows: usize) -> impl Iterator<Item = Range<usize>> {
    let rows = rows.max(1);
    (0..oh).step_by(rows).map(move |r| r..(r + rows).min(oh))
}

/// The input row output row `oy` reads at kernel row `ky`, if inside the image.
fn source_row(s: &ConvShape, oy: usize, ky: usize) -> Option<usize> {
    (oy * s.stride[0] + ky)
        .checked_sub(s.padding[0])
        .filter(|&iy| iy < s.h)
}

/// For one kernel column `kx`, how an output row maps onto an input row: output columns
/// `lo..hi` read input columns `first, first + sx, ...`; the others fall in the padding.
/// Computed once per kernel column, not per row (it takes two divisions).
struct Span {
    lo: usize,
    hi: usize,
    first: usize,
    stride: usize,
}

impl Span {
    fn new(s: &ConvShape, kx: usize) -> Span {
        let (ow, sx, px) = (s.out_w(), s.stride[1], s.padding[1]);
        // ox·sx + kx ≥ px  and  ox·sx + kx < w + px
        let lo = px.saturating_sub(kx).div_ceil(sx).min(ow);
        let hi = (s.w + px).saturating_sub(kx).div_ceil(sx).min(ow).max(lo);
        let first = lo * sx + kx - px;
        Span {
            lo,
            hi,
            first,
            stride: sx,
        }
    }

    /// One col2im row segment: `row[ox·sx + kx − px] += src[ox]` where inside the row.
    #[inline]
    fn add(&self, src: &[f32], row: &mut [f32]) {
        let src = &src[self.lo..self.hi];
        if self.stride == 1 {
            for (r, v) in row[self.first..].iter_mut().zip(src) {
                *r += v;
            }
        } else {
            for (v, i) in src.iter().zip((self.first..).step_by(self.stride)) {
                row[i] += v;
            }
        }
    }
}

/// `[cout, n·p]` (images side by side) → NCHW `[n, cout, p]`.
fn ungroup(grouped: &[f32], out: &mut [f32], cout: usize, n: usize, p: usize) {
    for o in 0..cout {
        for image in 0..n {
            out[(image * cout + o) * p..][..p]
                .copy_from_slice(&grouped[(o * n + image) * p..][..p]);
        }
    }
}

/// NCHW `[n, cout, p]` → `[cout, n·p]`.
fn group(nchw: &[f32], grouped: &mut [f32], cout: usize, n: usize, p: usize) {
    for o in 0..cout {
        for image in 0..n {
            grouped[(o * n + image) * p..][..p]
                .copy_from_slice(&nchw[(image * cout + o) * p..][..p]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one multiply-add at a time.
    fn naive_forward(s: &ConvShape, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (oh, ow) = (s.out_h(), s.out_w());
        let mut out = vec![0.0; s.batch * s.cout * oh * ow];
        for b in 0..s.batch {
            for o in 0..s.cout {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = 0.0;
                        for c in 0..s.cin {
                            for ky in 0..s.kh {
                                for kx in 0..s.kw {
                                    let iy =
                                        (oy * s.stride[0] + ky) as isize - s.padding[0] as isize;
                                    let ix =
                                        (ox * s.stride[1] + kx) as isize - s.padding[1] as isize;
                                    if iy >= 0
                                        && ix >= 0
                                        && (iy as usize) < s.h
                                        && (ix as usize) < s.w
                                    {
                                        acc += x[((b * s.cin + c) * s.h + iy as usize) * s.w
                                            + ix as usize]
                                            * w[((o * s.cin + c) * s.kh + ky) * s.kw + kx];
                                    }
                                }
                            }
                        }
                        out[((b * s.cout + o) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.731).sin()).collect()
    }

    fn shapes() -> Vec<ConvShape> {
        let base = ConvShape {
            batch: 3,
            cin: 2,
            h: 7,
            w: 6,
            cout: 4,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            padding: [1, 1],
        };
        vec![
            base,
            ConvShape {
                stride: [2, 2],
                ..base
            },
            ConvShape {
                kh: 1,
                kw: 1,
                padding: [0, 0],
                stride: [2, 2],
                ..base
            },
            ConvShape {
                padding: [0, 2],
                kh: 3,
                kw: 5,
                ..base
            },
            // 1x1 maps batch many images into one multiply.
            ConvShape {
                h: 2,
                w: 2,
                batch: 70,
                ..base
            },
            // One image (with 2+ threads): split into bands of rows across threads.
            ConvShape {
                batch: 1,
                h: 13,
                w: 11,
                ..base
            },
            // One image with more output channels than positions: split by channels.
            ConvShape {
                batch: 1,
                h: 3,
                w: 2,
                cout: 9,
                ..base
            },
            // For the direct kernel (3x3, stride 1, padding 1, 8+ input channels, an image
            // per thread; the input gradient runs it with input and output channels
            // swapped): rows of 8 + 4 + 1 outputs with a part-filled second block of 32
            // output channels, and rows of 12 + 1 with 9 (one block of 16) in the input
            // gradient;
            ConvShape {
                batch: 16,
                cin: 9,
                h: 4,
                w: 13,
                cout: 40,
                ..base
            },
            // short rows (4 + 1) with a part-filled third block of 32;
            ConvShape {
                batch: 16,
                cin: 8,
                h: 5,
                w: 5,
                cout: 70,
                ..base
            },
            // blocks of 16 output channels, the second with one, on rows of 6 + 4 + 1.
            ConvShape {
                batch: 16,
                cin: 16,
                h: 7,
                w: 11,
                cout: 17,
                ..base
            },
            // For the Winograd kernel (32+ channels in and out, both ways): odd sides, whose
            // last tiles lose a row and a column, a part-filled second block of 32 output
            // channels, and (input gradient) one block of 32 and one of 1;
            ConvShape {
                batch: 16,
                cin: 32,
                h: 7,
                w: 5,
                cout: 33,
                ..base
            },
            // even sides, 9 tiles per image, so that several images share a chunk;
            ConvShape {
                batch: 16,
                cin: 40,
                h: 6,
                w: 6,
                cout: 64,
                ..base
            },
            // rows of 18 tiles, more than one register's 16 in the input transform.
            ConvShape {
                batch: 16,
                cin: 32,
                h: 3,
                w: 35,
                cout: 32,
                ..base
            },
            // 12x12 with 64 input channels: Winograd's weight gradient on every SIMD level
            // (on the others with AVX-512 the direct one takes over: 16n input channels).
            ConvShape {
                batch: 2,
                cin: 64,
                h: 12,
                w: 12,
                cout: 36,
                ..base
            },
            // Large maps with few input channels (a network's first layer has one): im2col's
            // weight gradient, cut into bands.
            ConvShape {
                batch: 3,
                cin: 3,
                h: 24,
                w: 25,
                cout: 13,
                ..base
            },
            ConvShape {
                batch: 2,
                cin: 1,
                h: 26,
                w: 23,
                cout: 16,
                ..base
            },
        ]
    }

    type Forward = fn(&ConvShape, &[f32], &[f32], &Epilogue) -> Vec<f32>;
    type Backward = fn(&ConvShape, &[f32], &[f32], &[f32], bool) -> (Vec<f32>, Vec<f32>);

    /// What every test checks: the public entry points (the direct kernels where they apply
    /// on this CPU) and the im2col path on its own, so that both stay covered here.
    const IMPLEMENTATIONS: [(&str, Forward, Backward); 2] = [
        ("dispatch", forward_with, backward),
        ("im2col", forward_im2col, backward_im2col),
    ];

    #[test]
    fn forward_matches_the_definition() {
        for (name, forward, _) in IMPLEMENTATIONS {
            for s in shapes() {
                let x = values(s.batch * s.input_len(), 0.0);
                let w = values(s.weight_len(), 5.0);
                let got = forward(&s, &x, &w, &Epilogue::default());
                let want = naive_forward(&s, &x, &w);
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-4, "{name} {s:?}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn the_epilogue_shifts_and_clamps() {
        for (name, forward_with, _) in IMPLEMENTATIONS {
            for s in shapes() {
                let x = values(s.batch * s.input_len(), 4.0);
                let w = values(s.weight_len(), 6.0);
                let bias: Vec<f32> = (0..s.cout).map(|o| o as f32 * 0.5 - 1.0).collect();
                let plain = naive_forward(&s, &x, &w);
                let got = forward_with(
                    &s,
                    &x,
                    &w,
                    &Epilogue {
                        scale: None,
                        shift: Some(&bias),
                        relu: true,
                    },
                );
                let p = s.out_h() * s.out_w();
                for (i, (a, b)) in got.iter().zip(&plain).enumerate() {
                    let want = (b + bias[(i / p) % s.cout]).max(0.0);
                    assert!((a - want).abs() < 1e-4, "{name} {s:?}: {a} vs {want}");
                }
            }
        }
    }

    /// The gradients are the transposes of the forward map: for any x, w, g,
    /// ⟨g, conv(x, w)⟩ = ⟨dx(g), x⟩ = ⟨dw(g), w⟩ (the forward is linear in each argument).
    #[test]
    fn gradients_are_the_adjoints_of_the_forward() {
        for (name, _, backward) in IMPLEMENTATIONS {
            for s in shapes() {
                let x = values(s.batch * s.input_len(), 1.0);
                let w = values(s.weight_len(), 2.0);
                let g = values(s.batch * s.output_len(), 3.0);
                let y = naive_forward(&s, &x, &w);
                let dot = |a: &[f32], b: &[f32]| {
                    a.iter().zip(b).map(|(a, b)| (a * b) as f64).sum::<f64>()
                };
                let (dx, dw) = backward(&s, &x, &w, &g, true);
                let want = dot(&g, &y);
                assert!(
                    (dot(&dx, &x) - want).abs() < 1e-3 * want.abs().max(1.0),
                    "{name} {s:?} dx"
                );
                assert!(
                    (dot(&dw, &w) - want).abs() < 1e-3 * want.abs().max(1.0),
                    "{name} {s:?} dw"
                );
                let (no_dx, dw2) = backward(&s, &x, &w, &g, false);
                assert!(no_dx.is_empty());
                assert_eq!(dw, dw2);
            }
        }
    }

    /// Entry by entry (the adjoint test checks one projection of each gradient): the
    /// public gradients equal the im2col path's, wherever the direct kernels run.
    #[test]
    fn both_paths_give_the_same_gradients() {
        for s in shapes() {
            let x = values(s.batch * s.input_len(), 7.0);
            let w = values(s.weight_len(), 8.0);
            let g = values(s.batch * s.output_len(), 9.0);
            let (dx, dw) = backward(&s, &x, &w, &g, true);
            let (dx2, dw2) = backward_im2col(&s, &x, &w, &g, true);
            for (got, want, what) in [(dx, dx2, "dx"), (dw, dw2, "dw")] {
                assert_eq!(got.len(), want.len(), "{s:?} {what}");
                let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-5 * scale, "{s:?} {what}: {a} vs {b}");
                }
            }
        }
    }

    /// Where the CPU has AVX-512 or AVX2 (and at most 16 threads), the tests above do reach
    /// the fast kernels, both ways: the direct kernel on the three shapes with 8-31 channels,
    /// Winograd on the four with 32 or more, and the weight gradients: with AVX-512 the
    /// direct one on the three with 16 or 32 input channels and Winograd's on the two others
    /// (40 and 64 input channels), with AVX2 Winograd's on all four. Elsewhere they check
    /// the im2col path twice, and this says so. They test the widest level the CPU has;
    /// `FERRITE_SIMD=avx2` tests the AVX2 kernels on an AVX-512 CPU.
    #[test]
    fn the_tests_reach_the_fast_kernels() {
        #[cfg(target_arch = "x86_64")]
        if let Some(level) = crate::simd::level()
            && rayon::current_num_threads() <= 16
        {
            eprintln!("conv tests: the kernels ran with {level:?}");
            let count = |p: Path, turn: bool| {
                shapes()
                    .iter()
                    .filter(|s| path(&if turn { transposed(s) } else { **s }) == p)
                    .count()
            };
            for turn in [false, true] {
                // The two shapes for im2col's banded weight gradient have too few input
                // channels for the direct forward pass, but their input gradients take it.
                let direct = if turn { 5 } else { 3 };
                assert_eq!(
                    count(Path::Direct, turn),
                    direct,
                    "direct, transposed: {turn}"
                );
                assert_eq!(
                    count(Path::Winograd, turn),
                    4,
                    "winograd, transposed: {turn}"
                );
            }
            let count_dw =
                |applies: fn(&ConvShape) -> bool| shapes().iter().filter(|s| applies(s)).count();
            let avx512 = level == crate::simd::Simd::Avx512;
            let (winograd, direct) = if avx512 { (2, 3) } else { (4, 0) };
            assert_eq!(
                count_dw(crate::winograd::weight_grad_applies),
                winograd,
                "winograd weight gradient"
            );
            assert_eq!(
                count_dw(
                    |s| crate::direct_grad::applies(s) && !crate::winograd::weight_grad_applies(s)
                ),
                direct,
                "direct weight gradient"
            );
            return;
        }
        eprintln!(
            "conv tests: SKIPPED the direct and Winograd kernels (no AVX2, or over 16 threads)"
        );
    }
}
