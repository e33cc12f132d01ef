//! Fixed, reproducible changes to a face plane for robustness reports: how a face reaches a
//! model framed by another tool (tight or loose crops, shifts, tilts) or through another
//! camera (blur, low light, low contrast, JPEG compression). Unlike [`crate::augment`], nothing
//! here is random except a direction chosen from the face's index, so every report sees the
//! same faces.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageDecoder};

use crate::face::{PIXELS, SIDE};

/// What the geometric changes fill uncovered pixels with: mid-gray, as a cropping tool that
/// pads does.
const FILL: f32 = 128.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Perturbation {
    /// The face as it is.
    None,
    /// Moved by this many pixels up, down, left or right (by face index), gray fill.
    Shift(f32),
    /// Only the central fraction of the face, enlarged to 48x48 (a tighter crop).
    Tight(f32),
    /// This many gray pixels added on every side, then shrunk back to 48x48 (a looser crop).
    Loose(f32),
    /// Turned by this many degrees (clockwise or not, by face index), gray corners.
    Rotate(f32),
    /// Gaussian blur with this standard deviation in pixels.
    Blur(f32),
    /// Every pixel times this factor (below 1: darker).
    Light(f32),
    /// Distance from the face's mean times this factor (below 1: flatter).
    Contrast(f32),
    /// Saved as JPEG at this quality and decoded.
    Jpeg(u8),
}

/// The report's conditions, in order, with their names.
pub fn standard_set() -> Vec<(&'static str, Perturbation)> {
    use Perturbation::*;
    vec![
        ("as given", None),
        ("shift 3 px", Shift(3.0)),
        ("shift 5 px", Shift(5.0)),
        ("tight 90 %", Tight(0.9)),
        ("tight 80 %", Tight(0.8)),
        ("tight 70 %", Tight(0.7)),
        ("loose 5 px", Loose(5.0)),
        ("loose 10 px", Loose(10.0)),
        ("rotate 10°", Rotate(10.0)),
        ("rotate 20°", Rotate(20.0)),
        ("blur σ 1", Blur(1.0)),
        ("blur σ 2", Blur(2.0)),
        ("low light ×0.4", Light(0.4)),
        ("low contrast ×0.5", Contrast(0.5)),
        ("JPEG q 20", Jpeg(20)),
    ]
}

/// `plane` changed by `p`; `index` (the face's position in its split) picks directions.
pub fn apply(plane: &[u8], p: Perturbation, index: usize) -> [u8; PIXELS] {
    assert_eq!(plane.len(), PIXELS, "a face plane has 48x48 pixels");
    let c = SIDE as f32 / 2.0;
    // Geometric changes as a map from output position (continuous, centre 24) to source.
    let affine = |scale: f32, angle_deg: f32, dx: f32, dy: f32| {
        let (sin, cos) = angle_deg.to_radians().sin_cos();
        move |x: f32, y: f32| {
            let (u, v) = (x - c - dx, y - c - dy);
            (
                c + scale * (cos * u + sin * v),
                c + scale * (-sin * u + cos * v),
            )
        }
    };
    let sign = if index.is_multiple_of(2) { 1.0 } else { -1.0 };
    match p {
        Perturbation::None => to_array(plane.to_vec()),
        Perturbation::Shift(d) => {
            let (dx, dy) = [(d, 0.0), (-d, 0.0), (0.0, d), (0.0, -d)][index % 4];
            resample(plane, affine(1.0, 0.0, dx, dy))
        }
        Perturbation::Tight(f) => resample(plane, affine(f, 0.0, 0.0, 0.0)),
        Perturbation::Loose(b) => resample(
            plane,
            affine((SIDE as f32 + 2.0 * b) / SIDE as f32, 0.0, 0.0, 0.0),
        ),
        Perturbation::Rotate(deg) => resample(plane, affine(1.0, sign * deg, 0.0, 0.0)),
        Perturbation::Blur(sigma) => blur(plane, sigma),
        Perturbation::Light(f) => to_array(
            plane
                .iter()
                .map(|&v| (v as f32 * f).round().clamp(0.0, 255.0) as u8)
                .collect(),
        ),
        Perturbation::Contrast(f) => {
            let mean = plane.iter().map(|&v| v as f32).sum::<f32>() / PIXELS as f32;
            to_array(
                plane
                    .iter()
                    .map(|&v| ((v as f32 - mean) * f + mean).round().clamp(0.0, 255.0) as u8)
                    .collect(),
            )
        }
        Perturbation::Jpeg(q) => jpeg(plane, q),
    }
}

fn to_array(v: Vec<u8>) -> [u8; PIXELS] {
    v.try_into().expect("48x48 pixels")
}

/// Bilinear resampling through `map` (output pixel centre -> source position, continuous
/// coordinates); with a source pixel-centre grid, a position outside reads as [`FILL`].
fn resample(plane: &[u8], map: impl Fn(f32, f32) -> (f32, f32)) -> [u8; PIXELS] {
    let at = |x: i32, y: i32| -> f32 {
        if x < 0 || y < 0 || x >= SIDE as i32 || y >= SIDE as i32 {
            FILL
        } else {
            plane[y as usize * SIDE + x as usize] as f32
        }
    };
    let mut out = [0u8; PIXELS];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (u, v) = map(x as f32 + 0.5, y as f32 + 0.5);
            let (u, v) = (u - 0.5, v - 0.5);
            let (x0, y0) = (u.floor(), v.floor());
            let (fx, fy) = (u - x0, v - y0);
            let (x0, y0) = (x0 as i32, y0 as i32);
            let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
            let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
            out[y * SIDE + x] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Separable Gaussian blur (radius 3 sigma), edges repeated.
pub(crate) fn blur(plane: &[u8], sigma: f32) -> [u8; PIXELS] {
    let r = (3.0 * sigma).ceil() as i32;
    let kernel: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0.0; PIXELS];
        for y in 0..SIDE as i32 {
            for x in 0..SIDE as i32 {
                let mut s = 0.0;
                for (k, w) in (-r..=r).zip(&kernel) {
                    let (sx, sy) = if horizontal { (x + k, y) } else { (x, y + k) };
                    let (sx, sy) = (sx.clamp(0, SIDE as i32 - 1), sy.clamp(0, SIDE as i32 - 1));
                    s += w * src[(sy * SIDE as i32 + sx) as usize];
                }
                out[(y * SIDE as i32 + x) as usize] = s / total;
            }
        }
        out
    };
    let src: Vec<f32> = plane.iter().map(|&v| v as f32).collect();
    let out = pass(&pass(&src, true), false);
    to_array(
        out.iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect(),
    )
}

pub(crate) fn jpeg(plane: &[u8], quality: u8) -> [u8; PIXELS] {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode(plane, SIDE as u32, SIDE as u32, ExtendedColorType::L8)
        .expect("encoding a 48x48 gray image");
    let decoder = image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes)).expect("our own JPEG");
    let mut out = [0u8; PIXELS];
    decoder.read_image(&mut out).expect("our own JPEG decodes");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient() -> Vec<u8> {
        (0..PIXELS)
            .map(|i| ((i % SIDE) * 4 + (i / SIDE)) as u8)
            .collect()
    }

    #[test]
    fn none_and_identity_changes_leave_the_face_as_it_is() {
        let face = gradient();
        for p in [
            Perturbation::None,
            Perturbation::Tight(1.0),
            Perturbation::Loose(0.0),
            Perturbation::Rotate(0.0),
            Perturbation::Light(1.0),
            Perturbation::Contrast(1.0),
        ] {
            assert_eq!(apply(&face, p, 3).to_vec(), face, "{p:?}");
        }
    }

    #[test]
    fn shift_moves_whole_pixels_and_fills_gray() {
        let face = gradient();
        // Index 0 shifts right by 5.
        let out = apply(&face, Perturbation::Shift(5.0), 0);
        assert_eq!(out[10 * SIDE + 20], face[10 * SIDE + 15]);
        assert_eq!(out[10 * SIDE + 2], 128);
    }

    #[test]
    fn tight_enlarges_the_centre_and_loose_shrinks_with_a_gray_frame() {
        let face = gradient();
        let tight = apply(&face, Perturbation::Tight(0.5), 0);
        // Enlarged 2x about the centre: output x=0 reads source x=12.
        assert!((tight[24 * SIDE] as i32 - face[24 * SIDE + 12] as i32).abs() <= 3);
        let loose = apply(&face, Perturbation::Loose(10.0), 0);
        assert_eq!(loose[0], 128);
        assert!((loose[24 * SIDE + 24] as i32 - face[24 * SIDE + 24] as i32).abs() <= 2);
    }

    #[test]
    fn photometric_changes_do_what_their_names_say() {
        let face = gradient();
        let mean = |p: &[u8]| p.iter().map(|&v| v as f32).sum::<f32>() / PIXELS as f32;
        let spread = |p: &[u8]| {
            let m = mean(p);
            p.iter().map(|&v| (v as f32 - m).abs()).sum::<f32>() / PIXELS as f32
        };
        assert!(mean(&apply(&face, Perturbation::Light(0.4), 0)) < 0.45 * mean(&face));
        assert!(spread(&apply(&face, Perturbation::Contrast(0.5), 0)) < 0.55 * spread(&face));
        let blurred = apply(&face, Perturbation::Blur(2.0), 0);
        assert!((mean(&blurred) - mean(&face)).abs() < 2.0);
        let jpeg = apply(&face, Perturbation::Jpeg(20), 0);
        assert!(jpeg.iter().zip(&face).any(|(a, b)| a != b));
        assert!((mean(&jpeg) - mean(&face)).abs() < 3.0);
    }
}
