//! Face detection with YuNet-n, run on our own channels-last kernels: boxes, scores and five
//! landmarks per face, in the photo's pixels. The weights are embedded in the binary
//! (`assets/yunet`, Apache-2.0).
//!
//! A photo is shrunk so that its longest side is at most [`DetectSize`] before the network
//! sees it (faces smaller than about 10 pixels at that size are not found), padded to a
//! multiple of 32, and the faces found are mapped back to the photo.

mod decode;
mod yunet;

use std::sync::OnceLock;

use ferrite_kernels::nhwc::Map;
use image::{DynamicImage, RgbImage, imageops};
use serde::Serialize;

pub use decode::{Detection, iou};
use yunet::{ALIGN, YuNet};

/// Names of the five landmarks, in order.
pub const LANDMARKS: [&str; 5] = ["right_eye", "left_eye", "nose", "mouth_right", "mouth_left"];

/// Faces found in one image are capped at this many (the best-scoring), so that a mosaic of
/// thousands of faces costs bounded time and memory; [`Faces::capped`] says when it applied.
pub const MAX_FACES: usize = 1000;
/// Candidates that enter non-maximum suppression (best scores first).
const MAX_CANDIDATES: usize = 20_000;
/// Faces overlapping a better one by more than this are the same face (OpenCV's default).
const NMS_IOU: f32 = 0.3;
/// `--detect-size full` searches photos larger than this on a side in tiles of this size,
/// overlapping by [`OVERLAP`] pixels.
const TILE: u32 = 1024;
const OVERLAP: u32 = 160;

/// How large an image the detector sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectSize {
    /// Shrink so that the longest side is at most this many pixels (never enlarge).
    Longest(u32),
    /// The photo as it is (in overlapping tiles when larger than 1024 pixels, plus a pass
    /// at the default size for large faces): slower, for crowds of small faces.
    Full,
}

impl std::str::FromStr for DetectSize {
    type Err = String;
    fn from_str(s: &str) -> Result<DetectSize, String> {
        if s == "full" {
            return Ok(DetectSize::Full);
        }
        match s.parse::<u32>() {
            Ok(n) if n >= ALIGN as u32 => Ok(DetectSize::Longest(n)),
            _ => Err(format!(
                "expected `full` or a number of pixels of at least {ALIGN}, got {s:?}"
            )),
        }
    }
}

impl std::fmt::Display for DetectSize {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            DetectSize::Longest(n) => write!(f, "{n}"),
            DetectSize::Full => write!(f, "full"),
        }
    }
}

/// Detector settings.
#[derive(Debug, Clone, Copy)]
pub struct DetectOptions {
    /// Smallest face to keep: the box's longer side, in photo pixels.
    pub min_face: u32,
    /// Smallest detector score to keep (0..1).
    pub min_score: f32,
    pub size: DetectSize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            min_face: 16,
            min_score: 0.6,
            size: DetectSize::Longest(640),
        }
    }
}

impl DetectOptions {
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(format!(
                "the minimum detector score {} is outside 0..1",
                self.min_score
            ));
        }
        Ok(())
    }
}

/// A detected face in photo pixels: its box (clipped to the photo), the detector's score and
/// the five landmarks ([`LANDMARKS`]; they may lie outside the photo for a cut-off face).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub score: f32,
    pub landmarks: [[f32; 2]; 5],
}

/// The faces of one image, largest first.
#[derive(Debug, Clone, Default)]
pub struct Faces {
    pub faces: Vec<FaceBox>,
    /// True when more than [`MAX_FACES`] faces were found and only the best were kept.
    pub capped: bool,
}

/// The detector; shareable between threads (the network is read-only).
pub struct FaceDetector {
    net: &'static YuNet,
    options: DetectOptions,
}

impl FaceDetector {
    pub fn new(options: DetectOptions) -> Result<FaceDetector, String> {
        options.check()?;
        static NET: OnceLock<YuNet> = OnceLock::new();
        Ok(FaceDetector {
            net: NET.get_or_init(YuNet::embedded),
            options,
        })
    }

    /// The faces in `img`.
    pub fn detect(&self, img: &DynamicImage) -> Faces {
        let (w, h) = (img.width(), img.height());
        if w == 0 || h == 0 {
            return Faces::default();
        }
        // An RGB photo (every video frame) is read in place, not copied.
        let rgb = match img.as_rgb8() {
            Some(rgb) => std::borrow::Cow::Borrowed(rgb),
            None => std::borrow::Cow::Owned(img.to_rgb8()),
        };
        let found = match self.options.size {
            DetectSize::Longest(n) => self.pass(&rgb, n),
            DetectSize::Full if w.max(h) <= TILE => self.pass(&rgb, w.max(h)),
            DetectSize::Full => self.tiled(&rgb),
        };
        let kept = decode::nms(found, NMS_IOU, MAX_FACES + 1, MAX_CANDIDATES);
        let capped = kept.len() > MAX_FACES;
        let mut faces: Vec<FaceBox> = kept
            .into_iter()
            .take(MAX_FACES)
            .filter_map(|d| clipped(&d, w as f32, h as f32))
            .filter(|f| f.width.max(f.height) >= self.options.min_face as f32)
            .collect();
        faces.sort_by(|a, b| (b.width * b.height).total_cmp(&(a.width * a.height)));
        Faces { faces, capped }
    }

    /// Candidates (before NMS) in `rgb`'s pixels, the photo shrunk to at most `longest` on
    /// its longer side for the network.
    fn pass(&self, rgb: &RgbImage, longest: u32) -> Vec<Detection> {
        let (w, h) = rgb.dimensions();
        let scale = (longest as f32 / w.max(h) as f32).min(1.0);
        let (sw, sh) = (
            ((w as f32 * scale).round() as u32).max(1),
            ((h as f32 * scale).round() as u32).max(1),
        );
        let levels = self.net.forward(&bgr_input(rgb, sw as usize, sh as usize));
        let (fx, fy) = (w as f32 / sw as f32, h as f32 / sh as f32);
        decode::candidates(&levels, self.options.min_score)
            .into_iter()
            .map(|d| d.scaled(fx, fy, 0.0, 0.0))
            .collect()
    }

    /// `--detect-size full` on a large photo: overlapping tiles at full size for faces up to
    /// [`OVERLAP`] pixels, so that memory stays that of one tile whatever the photo's size,
    /// and one pass at the default size for larger faces. Each tile keeps the faces whose
    /// centre lies in its own part (the overlap split down the middle): such a face lies
    /// whole in the tile, with at least half the overlap less half the face of context.
    fn tiled(&self, rgb: &RgbImage) -> Vec<Detection> {
        let (w, h) = rgb.dimensions();
        let DetectSize::Longest(whole) = DetectOptions::default().size else {
            unreachable!("the default size is a number of pixels")
        };
        let side = |d: &Detection| d.rect[2].max(d.rect[3]);
        // Sizes near the split are kept by both; NMS then keeps one.
        let mut found: Vec<Detection> = self
            .pass(rgb, whole)
            .into_iter()
            .filter(|d| side(d) > 0.75 * OVERLAP as f32)
            .collect();
        let starts = |len: u32| {
            let mut v: Vec<u32> = (0..len.saturating_sub(OVERLAP))
                .step_by((TILE - OVERLAP) as usize)
                .collect();
            v.retain(|&s| s == 0 || s + OVERLAP < len);
            v
        };
        let half = OVERLAP as f32 / 2.0;
        // Whether a centre at `c` (tile pixels) is in the tile's own part along one axis.
        let owns = |c: f32, start: u32, len: u32, total: u32| {
            (start == 0 || c >= half) && (start + len == total || c < len as f32 - half)
        };
        for y0 in starts(h) {
            for x0 in starts(w) {
                let (tw, th) = (TILE.min(w - x0), TILE.min(h - y0));
                let tile = imageops::crop_imm(rgb, x0, y0, tw, th).to_image();
                found.extend(
                    self.pass(&tile, TILE)
                        .into_iter()
                        .filter(|d| {
                            let [x, y, bw, bh] = d.rect;
                            side(d) <= OVERLAP as f32
                                && owns(x + bw / 2.0, x0, tw, w)
                                && owns(y + bh / 2.0, y0, th, h)
                        })
                        .map(|d| d.scaled(1.0, 1.0, x0 as f32, y0 as f32)),
                );
            }
        }
        found
    }
}

/// A detection's box clipped to the `w` x `h` photo; `None` when nothing of it is inside.
fn clipped(d: &Detection, w: f32, h: f32) -> Option<FaceBox> {
    let [x, y, bw, bh] = d.rect;
    let (x0, y0) = (x.clamp(0.0, w), y.clamp(0.0, h));
    let (x1, y1) = ((x + bw).clamp(0.0, w), (y + bh).clamp(0.0, h));
    (x1 > x0 && y1 > y0).then_some(FaceBox {
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
        score: d.score,
        landmarks: d.landmarks,
    })
}

/// The network's input: `rgb` shrunk to `sw` x `sh` by area averaging (each output pixel
/// the mean of the photo pixels it covers, fractions at its edges), as BGR 0-255 floats,
/// channels-last, zero-padded at the bottom and right to multiples of 32. Straight into
/// floats in two separable passes: a third of the time of the `image` crate's triangle
/// filter into 8 bits, which took most of a shrunk photo's detection time.
fn bgr_input(rgb: &RgbImage, sw: usize, sh: usize) -> Map {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut map = Map::zeros(sh.div_ceil(ALIGN) * ALIGN, sw.div_ceil(ALIGN) * ALIGN, 3);
    let src = rgb.as_raw();
    let bgr = |out: &mut [f32], p: &[u8], k: f32| {
        out[0] += p[2] as f32 * k;
        out[1] += p[1] as f32 * k;
        out[2] += p[0] as f32 * k;
    };
    if (sw, sh) == (w, h) {
        for (y, row) in src.chunks_exact(w * 3).enumerate() {
            let out = &mut map.data[y * map.w * 3..][..w * 3];
            for (o, p) in out.chunks_exact_mut(3).zip(row.chunks_exact(3)) {
                bgr(o, p, 1.0);
            }
        }
        return map;
    }
    let (xs, ys) = (area_weights(w, sw), area_weights(h, sh));
    // Horizontal pass: every photo row to `sw` pixels.
    let mut rows = vec![0f32; h * sw * 3];
    for (row, out) in src.chunks_exact(w * 3).zip(rows.chunks_exact_mut(sw * 3)) {
        for ((first, weights), o) in xs.iter().zip(out.chunks_exact_mut(3)) {
            for (i, &k) in weights.iter().enumerate() {
                bgr(o, &row[(first + i) * 3..][..3], k);
            }
        }
    }
    // Vertical pass into the padded map.
    for (y, (first, weights)) in ys.iter().enumerate() {
        let out = &mut map.data[y * map.w * 3..][..sw * 3];
        for (i, &k) in weights.iter().enumerate() {
            for (o, &v) in out.iter_mut().zip(&rows[(first + i) * sw * 3..][..sw * 3]) {
                *o += v * k;
            }
        }
    }
    map
}

/// For each of `dst` output pixels along an axis of `src` photo pixels (`dst <= src`): the
/// first photo pixel it covers and the weights of the pixels it covers (summing to 1).
fn area_weights(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let (a, b) = (o as f64 * scale, ((o + 1) as f64 * scale).min(src as f64));
            let first = a.floor() as usize;
            let last = (b.ceil() as usize).clamp(first + 1, src);
            let weights = (first..last)
                .map(|i| (((i + 1) as f64).min(b) - (i as f64).max(a)) / (b - a))
                .map(|k| k as f32)
                .collect();
            (first, weights)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_weights_cover_each_output_pixel_once_and_sum_to_one() {
        for (src, dst) in [(640, 320), (640, 480), (1666, 640), (7, 3), (5, 5)] {
            let ws = area_weights(src, dst);
            let mut coverage = vec![0f64; src];
            for (first, w) in &ws {
                assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                for (i, &k) in w.iter().enumerate() {
                    coverage[first + i] += k as f64 * src as f64 / dst as f64;
                }
            }
            // Every photo pixel is used, in full, once.
            assert!(
                coverage.iter().all(|c| (c - 1.0).abs() < 1e-4),
                "{src}->{dst}"
            );
        }
    }

    #[test]
    fn shrinking_averages_and_swaps_to_bgr_with_zero_padding() {
        // A 4x2 photo of two 2x2 blocks, shrunk to 2x1: each output pixel is its block's mean.
        let rgb = RgbImage::from_fn(4, 2, |x, y| {
            if x < 2 {
                image::Rgb([10 + y as u8 * 10, 0, 200])
            } else {
                image::Rgb([0, 50, 0])
            }
        });
        let m = bgr_input(&rgb, 2, 1);
        assert_eq!((m.h, m.w, m.c), (32, 32, 3));
        assert_eq!(&m.data[..6], &[200.0, 0.0, 15.0, 0.0, 50.0, 0.0]);
        assert!(m.data[6..].iter().all(|&v| v == 0.0));
    }
}
