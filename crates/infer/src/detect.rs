//! Face detection with SeetaFace (the `rustface` crate), model embedded in the binary.

use image::GrayImage;
use rustface::{Detector, ImageData};
use serde::Serialize;

/// The SeetaFace frontal face model (see `assets/README.md`).
const MODEL: &[u8] = include_bytes!("../assets/seeta_fd_frontal_v1.0.bin");

/// The smallest face SeetaFace can look for: its window is 20 pixels.
pub const MIN_FACE_FLOOR: u32 = 20;

/// Detector settings.
#[derive(Debug, Clone, Copy)]
pub struct DetectOptions {
    /// Smallest face side to look for, in pixels (≥ 20).
    pub min_face: u32,
    /// Smallest detector score to keep. SeetaFace's scores are cascade margins, not
    /// probabilities: about 2 keeps most real faces, 5+ keeps only clear frontal ones.
    pub min_score: f64,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            min_face: 24,
            min_score: 2.0,
        }
    }
}

/// A detected face: its box in image pixels and the detector's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub score: f64,
}

/// One detector; not shareable between threads (make one per thread).
pub struct FaceDetector {
    inner: Box<dyn Detector>,
    options: DetectOptions,
}

impl FaceDetector {
    pub fn new(options: DetectOptions) -> Result<FaceDetector, String> {
        if options.min_face < MIN_FACE_FLOOR {
            return Err(format!(
                "--min-face {} is below the detector's smallest window ({MIN_FACE_FLOOR} pixels)",
                options.min_face
            ));
        }
        let model = rustface::read_model(MODEL).expect("the embedded SeetaFace model is valid");
        let mut inner = rustface::create_detector_with_model(model);
        inner.set_min_face_size(options.min_face);
        // Our own threshold filters below; the detector's is set low so it returns all.
        inner.set_score_thresh(options.min_score.min(2.0));
        inner.set_pyramid_scale_factor(0.8);
        inner.set_slide_window_step(4, 4);
        Ok(FaceDetector { inner, options })
    }

    /// The faces in `gray`, largest first; none for an image smaller than the detector window.
    pub fn detect(&mut self, gray: &GrayImage) -> Vec<FaceBox> {
        let (w, h) = gray.dimensions();
        if w < MIN_FACE_FLOOR || h < MIN_FACE_FLOOR {
            return Vec::new();
        }
        let faces = self.inner.detect(&ImageData::new(gray.as_raw(), w, h));
        let mut boxes: Vec<FaceBox> = faces
            .iter()
            .filter(|f| f.score() >= self.options.min_score)
            .filter_map(|f| {
                // Boxes can reach past the border; keep the part inside the image.
                let b = f.bbox();
                let (x0, y0) = (b.x().max(0) as u32, b.y().max(0) as u32);
                let x1 = (b.x() + b.width() as i32).clamp(0, w as i32) as u32;
                let y1 = (b.y() + b.height() as i32).clamp(0, h as i32) as u32;
                (x1 > x0 && y1 > y0).then(|| FaceBox {
                    x: x0,
                    y: y0,
                    width: x1 - x0,
                    height: y1 - y0,
                    score: f.score(),
                })
            })
            .collect();
        boxes.sort_by_key(|b| std::cmp::Reverse(b.width * b.height));
        boxes
    }
}
