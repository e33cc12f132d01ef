//! From decoded photos to emotions: detect (or take the whole image), frame each face like a
//! FER2013 face, and classify all faces of all images in shared batches.

use std::path::Path;

use burn::tensor::Device;
use ferrite_data::face::{PIXELS, to_face_plane};
use ferrite_model::file::{self, ModelFileError};
use ferrite_model::{ModelMeta, Network};
use ferrite_train::eval::{Tta, argmax, predict_planes};
use image::{DynamicImage, GrayImage, imageops};
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use crate::builtin;
use crate::detect::{DetectOptions, FaceBox, FaceDetector};

/// Faces per forward pass.
const BATCH: usize = 64;

/// A model ready to classify faces.
pub struct Predictor {
    net: Network,
    pub meta: ModelMeta,
    /// The model file, or "built-in".
    pub source: String,
    device: Device,
}

impl Predictor {
    /// Loads `model`, or the built-in model when `None`.
    pub fn load(model: Option<&Path>, device: Device) -> Result<Predictor, ModelFileError> {
        let ((net, meta), source) = match model {
            Some(path) => (file::load(path, &device)?, path.display().to_string()),
            None => (builtin::load(&device)?, builtin::NAME.to_string()),
        };
        Ok(Predictor {
            net,
            meta,
            source,
            device,
        })
    }

    /// Class probabilities (in `meta.classes` order) for each 48x48 face plane.
    pub fn classify(&self, planes: &[[u8; PIXELS]]) -> Vec<Vec<f32>> {
        planes
            .chunks(BATCH)
            .flat_map(|chunk| {
                let refs: Vec<&[u8]> = chunk.iter().map(|p| &p[..]).collect();
                predict_planes(
                    &self.net,
                    &refs,
                    &self.meta.normalization,
                    Tta::None,
                    &self.device,
                )
            })
            .collect()
    }
}

/// One face's answer.
#[derive(Debug, Clone)]
pub struct FacePrediction {
    /// Where the detector found it; `None` when the whole image was taken as the face.
    pub bbox: Option<FaceBox>,
    /// Probabilities in the model's class order; they sum to 1.
    pub probabilities: Vec<f32>,
    /// Index of the most probable class.
    pub top: usize,
}

/// One image's answer.
#[derive(Debug, Clone)]
pub struct ImagePrediction {
    pub width: u32,
    pub height: u32,
    pub faces: Vec<FacePrediction>,
}

/// How faces are found and framed.
#[derive(Debug, Clone, Copy)]
pub struct FaceOptions {
    /// `None`: each image is already one face crop (`--no-detect`).
    pub detect: Option<DetectOptions>,
    /// Extra context around a detector box, as a fraction of its side on every side.
    /// SeetaFace boxes run from the brows to the mouth; FER2013 faces include forehead and
    /// chin, which 0.2 restores.
    pub margin: f32,
}

impl Default for FaceOptions {
    fn default() -> Self {
        FaceOptions {
            detect: Some(DetectOptions::default()),
            margin: 0.2,
        }
    }
}

/// The faces found in one image, ready to classify.
pub struct FoundFaces {
    width: u32,
    height: u32,
    /// Detector boxes; one `None` when the whole image is the face.
    boxes: Vec<Option<FaceBox>>,
    planes: Vec<[u8; PIXELS]>,
}

/// Finds and frames the faces of every image, on all cores (one detector per thread). Needs
/// no model: a server can run it for many requests at once and share one model after it.
pub fn find_faces(
    images: &[DynamicImage],
    options: &FaceOptions,
) -> Result<Vec<FoundFaces>, String> {
    if let Some(d) = options.detect {
        FaceDetector::new(d)?; // check the options once, before the threads start
    }
    Ok(images
        .par_iter()
        .map_init(
            || {
                options
                    .detect
                    .map(|d| FaceDetector::new(d).expect("options checked above"))
            },
            |detector, img| {
                let (boxes, planes) = match detector {
                    None => (vec![None], vec![to_face_plane(img)]),
                    Some(detector) => {
                        let gray = img.to_luma8();
                        let boxes = detector.detect(&gray);
                        let planes = boxes
                            .iter()
                            .map(|b| face_plane(&gray, b, options.margin))
                            .collect();
                        (boxes.into_iter().map(Some).collect(), planes)
                    }
                };
                FoundFaces {
                    width: img.width(),
                    height: img.height(),
                    boxes,
                    planes,
                }
            },
        )
        .collect())
}

/// Classifies found faces, in batches pooled across images.
pub fn classify_faces(found: Vec<FoundFaces>, predictor: &Predictor) -> Vec<ImagePrediction> {
    let planes: Vec<[u8; PIXELS]> = found
        .iter()
        .flat_map(|f| f.planes.iter().copied())
        .collect();
    let mut probabilities = predictor.classify(&planes).into_iter();
    found
        .into_iter()
        .map(|f| ImagePrediction {
            width: f.width,
            height: f.height,
            faces: f
                .boxes
                .into_iter()
                .map(|bbox| {
                    let p = probabilities.next().expect("one prediction per face");
                    FacePrediction {
                        bbox,
                        top: argmax(&p),
                        probabilities: p,
                    }
                })
                .collect(),
        })
        .collect()
}

/// Predicts every face of every image: [`find_faces`], then [`classify_faces`].
pub fn predict_images(
    images: &[DynamicImage],
    options: &FaceOptions,
    predictor: &Predictor,
) -> Result<Vec<ImagePrediction>, String> {
    Ok(classify_faces(find_faces(images, options)?, predictor))
}

/// The 48x48 plane of a detected face: the box grown by `margin` on each side, squared
/// around its centre, kept inside the image.
pub fn face_plane(gray: &GrayImage, b: &FaceBox, margin: f32) -> [u8; PIXELS] {
    let (w, h) = gray.dimensions();
    let side = ((b.width.max(b.height) as f32) * (1.0 + 2.0 * margin)).round() as u32;
    let side = side.clamp(1, w.min(h));
    let cx = b.x as f32 + b.width as f32 / 2.0;
    let cy = b.y as f32 + b.height as f32 / 2.0;
    // Shift the square inward where it would leave the image, so the face stays whole.
    let x = (cx - side as f32 / 2.0)
        .round()
        .clamp(0.0, (w - side) as f32) as u32;
    let y = (cy - side as f32 / 2.0)
        .round()
        .clamp(0.0, (h - side) as f32) as u32;
    let crop = imageops::crop_imm(gray, x, y, side, side).to_image();
    to_face_plane(&DynamicImage::ImageLuma8(crop))
}

impl ImagePrediction {
    /// The JSON of one image, as `ferrite predict --json` and `ferrite serve` give it:
    /// `{"width", "height", "faces": [{"box", "score", "emotion", "probability",
    /// "probabilities": {class: p}}]}` (`box` and `score` are null without detection).
    pub fn to_json(&self, classes: &[String]) -> Value {
        let faces: Vec<Value> = self
            .faces
            .iter()
            .map(|f| {
                let probs: Map<String, Value> = classes
                    .iter()
                    .zip(&f.probabilities)
                    .map(|(c, p)| (c.clone(), json!(p)))
                    .collect();
                json!({
                    "box": f.bbox.map(|b| json!({"x": b.x, "y": b.y, "width": b.width, "height": b.height})),
                    "score": f.bbox.map(|b| b.score),
                    "emotion": classes[f.top],
                    "probability": f.probabilities[f.top],
                    "probabilities": probs,
                })
            })
            .collect();
        json!({"width": self.width, "height": self.height, "faces": faces})
    }
}
