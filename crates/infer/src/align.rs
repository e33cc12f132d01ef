//! Face crops for the classifier: a square around the detector's box, turned upright by the
//! line through the eyes, sampled to a 48x48 gray plane; or (`--no-align`) the same square
//! not turned.
//!
//! Both are chosen by measurement on FER2013 PublicTest faces shown as photos
//! (`cargo run --release -p ferrite-infer --example framing_study`), so that crops are framed
//! like the faces the models were trained on: FER2013's faces were cut around a detector's
//! box, and a crop from YuNet's box, [`BOX_SCALE`] times its longer side, lost 1.2 points
//! against the faces as given; turned upright by the eyes, 0.8. Fitting all five landmarks
//! onto a template of where they fall on average (the usual alignment) lost 2.1: the
//! mouth corners move with the expression, so the crop's scale and centre did too.

use ferrite_data::face::{PIXELS, SIDE};
use image::{GrayImage, Luma, imageops};

use crate::detect::FaceBox;

/// The plane's side against the longer side of the detector's box: YuNet's box spans about
/// the whole FER2013 frame, forehead to chin (median over 3,880 of the first 4,000 Training
/// faces 1.011, mean 1.032; `examples/framing_study.rs`).
pub const BOX_SCALE: f32 = 1.01;

/// A similarity map from plane coordinates (u, v) to photo coordinates (x, y):
/// x = a u - b v + tx, y = b u + a v + ty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    pub fn apply(&self, [u, v]: [f32; 2]) -> [f32; 2] {
        [
            self.a * u - self.b * v + self.tx,
            self.b * u + self.a * v + self.ty,
        ]
    }

    /// `scale` photo pixels per plane pixel, turned by `angle` (radians, clockwise on the
    /// photo), with the plane's centre on `centre`.
    pub fn turned(scale: f32, angle: f32, centre: [f32; 2]) -> Similarity {
        let (a, b) = (scale * angle.cos(), scale * angle.sin());
        let c = SIDE as f32 / 2.0;
        Similarity {
            a,
            b,
            tx: centre[0] - (a * c - b * c),
            ty: centre[1] - (b * c + a * c),
        }
    }

    /// Photo pixels per plane pixel.
    pub fn scale(&self) -> f32 {
        self.a.hypot(self.b)
    }
}

/// The 48x48 plane of a face: a square of [`BOX_SCALE`] times the box's longer side around
/// the box's centre, turned so that the eyes are level when `upright`.
pub fn face_plane(gray: &GrayImage, face: &FaceBox, upright: bool) -> [u8; PIXELS] {
    let a = face.width.max(face.height) * BOX_SCALE / SIDE as f32;
    let [right_eye, left_eye] = [face.landmarks[0], face.landmarks[1]];
    let angle = if upright {
        (left_eye[1] - right_eye[1]).atan2(left_eye[0] - right_eye[0])
    } else {
        0.0
    };
    let centre = [face.x + face.width / 2.0, face.y + face.height / 2.0];
    warp(gray, &Similarity::turned(a, angle, centre))
}

/// Samples the plane through `map`: each plane pixel averages an n x n grid of bilinear
/// samples (n = photo pixels per plane pixel, rounded up, at most 8), so a large face is
/// shrunk without aliasing. Outside the photo reads as the nearest edge pixel.
pub fn warp(gray: &GrayImage, map: &Similarity) -> [u8; PIXELS] {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let src = gray.as_raw();
    let mut plane = [0u8; PIXELS];
    if w == 0 || h == 0 {
        return plane;
    }
    let at = |x: isize, y: isize| -> f32 {
        src[y.clamp(0, h as isize - 1) as usize * w + x.clamp(0, w as isize - 1) as usize] as f32
    };
    let n = (map.scale().ceil() as usize).clamp(1, 8);
    let step = 1.0 / n as f32;
    for v in 0..SIDE {
        for u in 0..SIDE {
            let mut sum = 0.0;
            for j in 0..n {
                for i in 0..n {
                    let [x, y] = map.apply([
                        u as f32 + (i as f32 + 0.5) * step,
                        v as f32 + (j as f32 + 0.5) * step,
                    ]);
                    // Continuous coordinates -> pixel-centre indices.
                    let (x, y) = (x - 0.5, y - 0.5);
                    let (x0, y0) = (x.floor(), y.floor());
                    let (fx, fy) = (x - x0, y - y0);
                    let (x0, y0) = (x0 as isize, y0 as isize);
                    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
                    let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
                    sum += top * (1.0 - fy) + bottom * fy;
                }
            }
            plane[v * SIDE + u] = (sum / (n * n) as f32).round().clamp(0.0, 255.0) as u8;
        }
    }
    plane
}

/// How the template and the pipeline check show a 48x48 face as a photo: enlarged
/// `scale` times (bilinear) in the middle of a square `canvas` of neutral gray. Returns the
/// photo and where the face's top-left corner is on it.
pub fn face_on_canvas(plane: &[u8], scale: u32, canvas: u32) -> (GrayImage, u32) {
    let face = GrayImage::from_raw(SIDE as u32, SIDE as u32, plane.to_vec())
        .expect("a face plane has SIDE x SIDE pixels");
    let side = SIDE as u32 * scale;
    let big = imageops::resize(&face, side, side, imageops::FilterType::Triangle);
    let mut photo = GrayImage::from_pixel(canvas, canvas, Luma([128]));
    let at = (canvas - side) / 2;
    imageops::replace(&mut photo, &big, at as i64, at as i64);
    (photo, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turned_maps_the_plane_centre_to_the_centre_at_the_given_scale_and_angle() {
        let m = Similarity::turned(3.0, 0.3, [100.0, 50.0]);
        let c = m.apply([24.0, 24.0]);
        assert!((c[0] - 100.0).abs() < 1e-4 && (c[1] - 50.0).abs() < 1e-4);
        assert!((m.scale() - 3.0).abs() < 1e-5);
        // One plane pixel to the right goes 3 photo pixels along the turned axis.
        let r = m.apply([25.0, 24.0]);
        assert!((r[0] - c[0] - 3.0 * 0.3f32.cos()).abs() < 1e-4);
        assert!((r[1] - c[1] - 3.0 * 0.3f32.sin()).abs() < 1e-4);
    }

    #[test]
    fn warping_through_the_identity_returns_the_plane_and_a_2x_map_averages() {
        let plane: Vec<u8> = (0..PIXELS).map(|i| ((i * 7) % 251) as u8).collect();
        let gray = GrayImage::from_raw(SIDE as u32, SIDE as u32, plane.clone()).unwrap();
        let id = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        assert_eq!(warp(&gray, &id).to_vec(), plane);

        // A photo at twice the size, each plane pixel a 2x2 block: the warp averages back.
        let big = GrayImage::from_fn(96, 96, |x, y| {
            image::Luma([plane[(y / 2 * 48 + x / 2) as usize]])
        });
        let twice = Similarity {
            a: 2.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        assert_eq!(warp(&big, &twice).to_vec(), plane);
    }

    #[test]
    fn a_tilted_face_comes_out_level() {
        // A bright bar through the eyes, tilted by 20 degrees: upright, it is level in the
        // plane (its row is bright across); not turned, it stays tilted.
        let angle = 20f32.to_radians();
        let (cx, cy) = (100.0, 80.0);
        let gray = GrayImage::from_fn(200, 160, |x, y| {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            // Distance from the line through the centre at `angle`.
            let d = -dx * angle.sin() + dy * angle.cos();
            Luma([if d.abs() < 3.0 { 250 } else { 20 }])
        });
        let eyes = [
            [cx - 30.0 * angle.cos(), cy - 30.0 * angle.sin()],
            [cx + 30.0 * angle.cos(), cy + 30.0 * angle.sin()],
        ];
        let face = FaceBox {
            x: cx - 48.0,
            y: cy - 48.0,
            width: 96.0,
            height: 96.0,
            score: 0.9,
            landmarks: [
                eyes[0],
                eyes[1],
                [cx, cy + 10.0],
                [cx - 15.0, cy + 30.0],
                [cx + 15.0, cy + 30.0],
            ],
        };
        let row_mean = |p: &[u8; PIXELS], v: usize| {
            p[v * SIDE + 4..v * SIDE + 44]
                .iter()
                .map(|&x| x as f32)
                .sum::<f32>()
                / 40.0
        };
        let level = face_plane(&gray, &face, true);
        assert!(row_mean(&level, 24) > 200.0, "{}", row_mean(&level, 24));
        let tilted = face_plane(&gray, &face, false);
        assert!(row_mean(&tilted, 24) < 150.0, "{}", row_mean(&tilted, 24));
    }
}
