//! Seeded, reproducible augmentation of 48x48 face planes.
//!
//! All geometric changes (crop, flip, rotation, scale, shift) are composed into one affine
//! map and applied with a single bilinear resampling, so a face is interpolated once, not
//! once per transform. Every sample draws from its own RNG seeded by (seed, epoch, sample
//! index): the result does not depend on which worker thread prepared it, and a resumed
//! run sees exactly the images it would have seen.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::face::{PIXELS, SIDE};

/// How the model input is normalised: `(pixel / 255 - mean) / std`. Stored in model files.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: f32,
    pub std: f32,
}

impl Default for Normalization {
    /// Close to FER2013's pixel statistics (mean 0.508, std 0.255 over Training).
    fn default() -> Self {
        Normalization {
            mean: 0.5,
            std: 0.25,
        }
    }
}

impl Normalization {
    /// Writes the normalised plane into `out`.
    pub fn apply(&self, plane: &[u8], out: &mut [f32]) {
        let a = 1.0 / (255.0 * self.std);
        let b = -self.mean / self.std;
        for (o, &p) in out.iter_mut().zip(plane) {
            *o = p as f32 * a + b;
        }
    }
}

/// Which crop to take before the other geometric changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Crop {
    None,
    /// Zero-pad by `pad` pixels, then take a random 48x48 window (an integer shift).
    Pad {
        pad: u32,
    },
    /// Random-resized crop: a window of `min_area..1` of the face, aspect 3/4..4/3,
    /// stretched back to 48x48.
    Resized {
        min_area: f32,
    },
}

/// What positions outside the face read as after a geometric change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// Black, as zero padding.
    #[default]
    Black,
    /// The nearest edge pixel: a face zoomed out or shifted keeps plausible surroundings
    /// instead of a black frame no detector crop ever has.
    Edge,
    /// Mid-gray (128), as cropping tools pad a face that reaches the image's border.
    Gray,
    /// Each face one of `Edge`, `Gray` and `Black`, drawn with equal chances: a network that
    /// meets all three paddings in training does not learn to rely on any one of them.
    Mixed,
}

impl Fill {
    /// The padding for one face: `Mixed` draws one (the only variant that uses randomness,
    /// so the random stream of the others is what it was before `Mixed` existed).
    fn draw(self, rng: &mut ChaCha8Rng) -> Pad {
        match self {
            Fill::Black => Pad::Value(0.0),
            Fill::Gray => Pad::Value(128.0),
            Fill::Edge => Pad::Edge,
            Fill::Mixed => match rng.random_range(0..3) {
                0 => Pad::Edge,
                1 => Pad::Value(128.0),
                _ => Pad::Value(0.0),
            },
        }
    }
}

/// What one face's positions outside the source read as.
#[derive(Debug, Clone, Copy)]
enum Pad {
    Edge,
    Value(f32),
}

/// Augmentation settings. `AugmentConfig::default()` is what `ferrite train` uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    pub crop: Crop,
    pub hflip: bool,
    /// Maximum rotation, degrees either way.
    pub rotate_deg: f32,
    /// Zoom factor drawn from `1 - scale .. 1 + scale`.
    pub scale: f32,
    /// Shift drawn from `-shift .. shift`, as a fraction of the side.
    pub shift: f32,
    /// Brightness factor drawn from `1 - brightness .. 1 + brightness`.
    pub brightness: f32,
    /// Contrast factor drawn from `1 - contrast .. 1 + contrast`.
    pub contrast: f32,
    /// Probability of erasing one random rectangle (2-33 % of the face) to the mean.
    pub erase_prob: f32,
    /// Outside the face after a geometric change (runs before this field existed: black).
    #[serde(default)]
    pub fill: Fill,
    /// Probability of a Gaussian blur, sigma drawn from 0.3..`blur_sigma` pixels: a small
    /// face enlarged, or out of focus.
    #[serde(default)]
    pub blur_prob: f32,
    #[serde(default)]
    pub blur_sigma: f32,
    /// Probability of JPEG compression at a quality drawn from 15..75.
    #[serde(default)]
    pub jpeg_prob: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            crop: Crop::Pad { pad: 4 },
            hflip: true,
            rotate_deg: 10.0,
            scale: 0.1,
            shift: 0.0,
            brightness: 0.2,
            contrast: 0.2,
            erase_prob: 0.25,
            fill: Fill::Black,
            blur_prob: 0.0,
            blur_sigma: 0.0,
            jpeg_prob: 0.0,
        }
    }
}

impl AugmentConfig {
    /// No change at all: the identity, for evaluation.
    pub fn none() -> Self {
        AugmentConfig {
            crop: Crop::None,
            hflip: false,
            rotate_deg: 0.0,
            scale: 0.0,
            shift: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            erase_prob: 0.0,
            fill: Fill::Black,
            blur_prob: 0.0,
            blur_sigma: 0.0,
            jpeg_prob: 0.0,
        }
    }

    /// For faces framed by any tool and any camera: zoom 0.7-1.3 (tight crops to loose
    /// borders), shifts of up to 10 % of the side, rotations to 15 degrees, ±30 % brightness
    /// and contrast, edge fill, and a quarter of the faces blurred (sigma to 1.5) and a
    /// quarter JPEG-compressed. FER2013's own framing is one point of this range; the
    /// `ferrite robustness` report measures what it buys.
    pub fn framing() -> Self {
        AugmentConfig {
            crop: Crop::None,
            hflip: true,
            rotate_deg: 15.0,
            scale: 0.3,
            shift: 0.1,
            brightness: 0.3,
            contrast: 0.3,
            erase_prob: 0.25,
            fill: Fill::Edge,
            blur_prob: 0.25,
            blur_sigma: 1.5,
            jpeg_prob: 0.25,
        }
    }
}

/// Mixes seed, epoch and sample index into one well-spread RNG seed (SplitMix64 steps).
pub fn sample_seed(seed: u64, epoch: u64, index: u64) -> u64 {
    let mut x = seed;
    for v in [epoch, index] {
        x = splitmix(x ^ splitmix(v.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    }
    x
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Augments `plane` and writes the normalised result into `out` (2304 floats).
pub fn augment_into(
    plane: &[u8],
    cfg: &AugmentConfig,
    norm: &Normalization,
    rng_seed: u64,
    out: &mut [f32],
) {
    let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
    let mut pixels = [0f32; PIXELS];
    let geometry = Affine::draw(cfg, &mut rng);
    match geometry {
        Some(map) => map.resample(plane, cfg.fill.draw(&mut rng), &mut pixels),
        None => pixels
            .iter_mut()
            .zip(plane)
            .for_each(|(o, &p)| *o = p as f32),
    }

    // Camera changes, on whole grey levels; drawn only when enabled, so the random stream
    // of a configuration without them is what it was before they existed.
    if cfg.blur_prob > 0.0 && rng.random::<f32>() < cfg.blur_prob {
        let sigma = 0.3 + (cfg.blur_sigma - 0.3).max(0.0) * rng.random::<f32>();
        requantized(&mut pixels, |p| crate::perturb::blur(p, sigma));
    }
    if cfg.jpeg_prob > 0.0 && rng.random::<f32>() < cfg.jpeg_prob {
        let quality = 15 + (rng.random::<f32>() * 60.0) as u8;
        requantized(&mut pixels, |p| crate::perturb::jpeg(p, quality));
    }

    let b = 1.0 + uniform(&mut rng, cfg.brightness);
    let c = 1.0 + uniform(&mut rng, cfg.contrast);
    if b != 1.0 || c != 1.0 {
        let mean = pixels.iter().sum::<f32>() / PIXELS as f32 * b;
        for p in pixels.iter_mut() {
            *p = ((*p * b - mean) * c + mean).clamp(0.0, 255.0);
        }
    }

    let (a, off) = (1.0 / (255.0 * norm.std), -norm.mean / norm.std);
    for (o, p) in out.iter_mut().zip(pixels) {
        *o = p * a + off;
    }

    if cfg.erase_prob > 0.0 && rng.random::<f32>() < cfg.erase_prob {
        erase(out, &mut rng);
    }
}

/// Applies a change made for 8-bit planes to float pixels.
fn requantized(pixels: &mut [f32; PIXELS], change: impl Fn(&[u8]) -> [u8; PIXELS]) {
    let plane: Vec<u8> = pixels
        .iter()
        .map(|p| p.round().clamp(0.0, 255.0) as u8)
        .collect();
    for (p, v) in pixels.iter_mut().zip(change(&plane)) {
        *p = v as f32;
    }
}

/// Uniform in `-r..r` (0 when `r` is 0, without consuming randomness differently).
fn uniform(rng: &mut ChaCha8Rng, r: f32) -> f32 {
    let u: f32 = rng.random();
    (2.0 * u - 1.0) * r
}

/// Random erasing (Zhong et al. 2017): one rectangle of 2-33 % of the area, aspect
/// 0.3-3.3, set to 0, which after normalisation is the dataset mean.
fn erase(out: &mut [f32], rng: &mut ChaCha8Rng) {
    let side = SIDE as f32;
    for _ in 0..10 {
        let area = side * side * (0.02 + 0.31 * rng.random::<f32>());
        let log_ratio = (0.3f32).ln() + ((3.3f32).ln() - (0.3f32).ln()) * rng.random::<f32>();
        let ratio = log_ratio.exp();
        let h = (area * ratio).sqrt().round() as usize;
        let w = (area / ratio).sqrt().round() as usize;
        if h == 0 || w == 0 || h >= SIDE || w >= SIDE {
            continue;
        }
        let y0 = (rng.random::<f32>() * (SIDE - h) as f32) as usize;
        let x0 = (rng.random::<f32>() * (SIDE - w) as f32) as usize;
        for y in y0..y0 + h {
            out[y * SIDE + x0..y * SIDE + x0 + w].fill(0.0);
        }
        return;
    }
}

/// An inverse affine map: output pixel centre (x, y) -> source position.
struct Affine {
    m: [[f32; 2]; 2],
    t: [f32; 2],
}

impl Affine {
    /// Draws the geometric part of an augmentation; `None` when it is the identity.
    fn draw(cfg: &AugmentConfig, rng: &mut ChaCha8Rng) -> Option<Affine> {
        let c = (SIDE as f32 - 1.0) / 2.0;
        // Forward transform, from source to output: crop window, flip, zoom, rotate, shift.
        // Build its inverse directly: output -> source.
        let (mut sx, mut sy, mut cx, mut cy) = (1.0f32, 1.0f32, 0.0f32, 0.0f32);
        match cfg.crop {
            Crop::None => {}
            Crop::Pad { pad } => {
                let p = pad as f32;
                cx = (rng.random::<f32>() * (2.0 * p + 1.0)).floor() - p;
                cy = (rng.random::<f32>() * (2.0 * p + 1.0)).floor() - p;
            }
            Crop::Resized { min_area } => {
                let area = min_area + (1.0 - min_area) * rng.random::<f32>();
                let log_r =
                    (0.75f32).ln() + ((4.0f32 / 3.0).ln() - (0.75f32).ln()) * rng.random::<f32>();
                let r = log_r.exp();
                sx = (area * r).sqrt().min(1.0); // window width as a fraction of the side
                sy = (area / r).sqrt().min(1.0);
                cx = (rng.random::<f32>() - 0.5) * (1.0 - sx) * SIDE as f32;
                cy = (rng.random::<f32>() - 0.5) * (1.0 - sy) * SIDE as f32;
            }
        }
        let flip = cfg.hflip && rng.random::<f32>() < 0.5;
        let zoom = 1.0 + uniform(rng, cfg.scale);
        let angle = uniform(rng, cfg.rotate_deg).to_radians();
        let shift = [
            uniform(rng, cfg.shift) * SIDE as f32,
            uniform(rng, cfg.shift) * SIDE as f32,
        ];
        if sx == 1.0
            && sy == 1.0
            && cx == 0.0
            && cy == 0.0
            && !flip
            && zoom == 1.0
            && angle == 0.0
            && shift == [0.0, 0.0]
        {
            return None;
        }
        // Output offset from centre d -> unshift, unrotate, unzoom, unflip, into the window.
        let (sin, cos) = angle.sin_cos();
        let f = if flip { -1.0 } else { 1.0 };
        let m = [
            [f * sx * cos / zoom, f * sx * sin / zoom],
            [-sy * sin / zoom, sy * cos / zoom],
        ];
        let t0 = [-shift[0], -shift[1]];
        let t = [
            c + cx + m[0][0] * t0[0] + m[0][1] * t0[1] - (m[0][0] + m[0][1]) * c,
            c + cy + m[1][0] * t0[0] + m[1][1] * t0[1] - (m[1][0] + m[1][1]) * c,
        ];
        Some(Affine { m, t })
    }

    /// Bilinear resampling; positions outside the source read as `pad` says.
    fn resample(&self, src: &[u8], pad: Pad, out: &mut [f32; PIXELS]) {
        let last = SIDE as i32 - 1;
        let at = |x: i32, y: i32| -> f32 {
            let outside = x < 0 || y < 0 || x > last || y > last;
            match pad {
                Pad::Value(v) if outside => v,
                _ => src[y.clamp(0, last) as usize * SIDE + x.clamp(0, last) as usize] as f32,
            }
        };
        for y in 0..SIDE {
            for x in 0..SIDE {
                let (xf, yf) = (x as f32, y as f32);
                let u = self.m[0][0] * xf + self.m[0][1] * yf + self.t[0];
                let v = self.m[1][0] * xf + self.m[1][1] * yf + self.t[1];
                let (x0, y0) = (u.floor(), v.floor());
                let (ax, ay) = (u - x0, v - y0);
                let (x0, y0) = (x0 as i32, y0 as i32);
                let top = at(x0, y0) * (1.0 - ax) + at(x0 + 1, y0) * ax;
                let bottom = at(x0, y0 + 1) * (1.0 - ax) + at(x0 + 1, y0 + 1) * ax;
                out[y * SIDE + x] = top * (1.0 - ay) + bottom * ay;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient_face() -> Vec<u8> {
        (0..PIXELS)
            .map(|i| ((i % SIDE) * 5 + (i / SIDE)) as u8)
            .collect()
    }

    #[test]
    fn no_augmentation_is_plain_normalisation() {
        let face = gradient_face();
        let norm = Normalization::default();
        let mut a = vec![0.0; PIXELS];
        let mut b = vec![0.0; PIXELS];
        augment_into(&face, &AugmentConfig::none(), &norm, 7, &mut a);
        norm.apply(&face, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn same_seed_same_result_other_seed_other_result() {
        let face = gradient_face();
        let cfg = AugmentConfig::default();
        let norm = Normalization::default();
        let run = |seed| {
            let mut out = vec![0.0; PIXELS];
            augment_into(&face, &cfg, &norm, seed, &mut out);
            out
        };
        assert_eq!(run(sample_seed(1, 2, 3)), run(sample_seed(1, 2, 3)));
        assert_ne!(run(sample_seed(1, 2, 3)), run(sample_seed(1, 3, 3)));
    }

    #[test]
    fn flip_alone_mirrors_exactly() {
        let face = gradient_face();
        let cfg = AugmentConfig {
            hflip: true,
            ..AugmentConfig::none()
        };
        let norm = Normalization {
            mean: 0.0,
            std: 1.0 / 255.0,
        };
        // Find a seed that flips, then check the mirror pixel for pixel.
        for seed in 0..20 {
            let mut out = vec![0.0; PIXELS];
            augment_into(&face, &cfg, &norm, seed, &mut out);
            if out[0] != face[0] as f32 {
                for y in 0..SIDE {
                    for x in 0..SIDE {
                        let want = face[y * SIDE + (SIDE - 1 - x)] as f32;
                        assert!((out[y * SIDE + x] - want).abs() < 1e-3);
                    }
                }
                return;
            }
        }
        panic!("no seed in 0..20 flipped");
    }

    #[test]
    fn each_fill_pads_as_it_says_and_mixed_draws_all_three() {
        // A face whose every pixel is 200, zoomed, shifted and turned. Geometry is drawn
        // first, so a seed gives the same geometry under every fill; where it leaves pixels
        // wholly outside the face, the darkest pixel tells the fill: 0 black, 128 gray, 200
        // edge (the face's own border value, everywhere).
        let face = &vec![200u8; PIXELS];
        let norm = Normalization {
            mean: 0.0,
            std: 1.0 / 255.0,
        };
        let darkest = |fill, seed| {
            let cfg = AugmentConfig {
                fill,
                brightness: 0.0,
                contrast: 0.0,
                erase_prob: 0.0,
                blur_prob: 0.0,
                jpeg_prob: 0.0,
                ..AugmentConfig::framing()
            };
            let mut out = vec![0.0; PIXELS];
            augment_into(face, &cfg, &norm, seed, &mut out);
            // Rounded: bilinear weights summing to one are not exact in floating point.
            out.into_iter().fold(f32::INFINITY, f32::min).round()
        };
        let uncovered: Vec<u64> = (0..60)
            .filter(|&seed| darkest(Fill::Black, seed) == 0.0)
            .collect();
        assert!(uncovered.len() >= 20, "{} of 60 seeds", uncovered.len());
        let mut seen = [0; 3];
        for &seed in &uncovered {
            assert_eq!(darkest(Fill::Gray, seed), 128.0, "seed {seed}");
            assert_eq!(darkest(Fill::Edge, seed), 200.0, "seed {seed}");
            match darkest(Fill::Mixed, seed) {
                0.0 => seen[0] += 1,
                128.0 => seen[1] += 1,
                200.0 => seen[2] += 1,
                other => panic!("seed {seed}: darkest pixel {other}"),
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "black, gray, edge: {seen:?}");
        for seed in 0..60 {
            assert_eq!(darkest(Fill::Edge, seed), 200.0, "seed {seed}");
        }
    }

    #[test]
    fn blur_and_jpeg_change_the_face_only_when_asked() {
        let face: Vec<u8> = (0..PIXELS)
            .map(|i| {
                if (i % SIDE / 4 + i / SIDE / 4).is_multiple_of(2) {
                    40
                } else {
                    220
                }
            })
            .collect();
        let norm = Normalization {
            mean: 0.0,
            std: 1.0 / 255.0,
        };
        let run = |cfg: AugmentConfig| {
            let mut out = vec![0.0; PIXELS];
            augment_into(&face, &cfg, &norm, 5, &mut out);
            out
        };
        let plain: Vec<f32> = face.iter().map(|&v| v as f32).collect();
        assert_eq!(run(AugmentConfig::none()), plain);
        // A checkerboard of 4-pixel squares loses contrast when blurred, and changes under JPEG.
        let spread = |v: &[f32]| v.iter().map(|x| (x - 130.0).abs()).sum::<f32>() / PIXELS as f32;
        let blurred = run(AugmentConfig {
            blur_prob: 1.0,
            blur_sigma: 1.5,
            ..AugmentConfig::none()
        });
        assert!(spread(&blurred) < 0.9 * spread(&plain));
        let jpeg = run(AugmentConfig {
            jpeg_prob: 1.0,
            ..AugmentConfig::none()
        });
        assert!(
            jpeg != plain
                && (jpeg.iter().sum::<f32>() - plain.iter().sum::<f32>()).abs() / (PIXELS as f32)
                    < 4.0
        );
    }

    #[test]
    fn pad_crop_is_an_integer_shift_with_black_border() {
        let face = vec![200u8; PIXELS];
        let cfg = AugmentConfig {
            crop: Crop::Pad { pad: 4 },
            ..AugmentConfig::none()
        };
        let norm = Normalization {
            mean: 0.0,
            std: 1.0 / 255.0,
        };
        let mut out = vec![0.0; PIXELS];
        augment_into(&face, &cfg, &norm, 3, &mut out);
        // Every value is either the face or the black padding, never a blend.
        assert!(
            out.iter()
                .all(|&v| (v - 200.0).abs() < 1e-3 || v.abs() < 1e-3)
        );
    }
}
