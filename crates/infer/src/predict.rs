//! From decoded photos to emotions: detect (or take the whole image), frame each face like a
//! FER2013 face, and classify all faces of all images in shared batches.

use std::path::PathBuf;

use burn::tensor::Device;
use ferrite_data::face::{PIXELS, to_face_plane};
use ferrite_model::ModelFileError;
use ferrite_model::ModelMeta;
use ferrite_model::ensemble::{Ensemble, describe};
use ferrite_model::predict::{Tta, argmax};
use image::DynamicImage;
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use crate::align;
use crate::builtin;
use crate::detect::{DetectOptions, FaceBox, FaceDetector, Faces, LANDMARKS};

/// Faces per forward pass.
const BATCH: usize = 64;

/// A model (or an ensemble of models) ready to classify faces.
pub struct Predictor {
    models: Ensemble,
    /// The model file(s), joined by " + ", or "built-in".
    pub source: String,
    device: Device,
}

impl Predictor {
    /// Loads the model files (several: an ensemble, probabilities averaged), or the
    /// built-in model when there are none.
    pub fn load(models: &[PathBuf], device: Device) -> Result<Predictor, ModelFileError> {
        let (models, source) = if models.is_empty() {
            let (net, meta) = builtin::load(&device)?;
            (Ensemble::one(net, meta), builtin::NAME.to_string())
        } else {
            (Ensemble::load(models, &device)?, describe(models))
        };
        Ok(Predictor {
            models,
            source,
            device,
        })
    }

    /// The (first) model's metadata; the classes are every member's.
    pub fn meta(&self) -> &ModelMeta {
        self.models.meta()
    }

    /// How many models are averaged.
    pub fn models(&self) -> usize {
        self.models.len()
    }

    /// Class probabilities (in `meta().classes` order) for each 48x48 face plane.
    pub fn classify(&self, planes: &[[u8; PIXELS]]) -> Vec<Vec<f32>> {
        planes
            .chunks(BATCH)
            .flat_map(|chunk| {
                let refs: Vec<&[u8]> = chunk.iter().map(|p| &p[..]).collect();
                self.models.predict_planes(&refs, Tta::None, &self.device)
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
    /// More than [`MAX_FACES`](crate::detect::MAX_FACES) faces were found; only the best-scoring were kept.
    pub capped: bool,
}

/// How faces are found and framed.
#[derive(Debug, Clone, Copy)]
pub struct FaceOptions {
    /// `None`: each image is already one face crop (`--no-detect`).
    pub detect: Option<DetectOptions>,
    /// Turn each face upright by the line through its eyes ([`align`]); otherwise take the
    /// square around the detector's box as it is.
    pub align: bool,
}

impl Default for FaceOptions {
    fn default() -> Self {
        FaceOptions {
            detect: Some(DetectOptions::default()),
            align: true,
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
    capped: bool,
}

/// Finds and frames the faces of every image, on all cores. Needs no model: a server can run
/// it for many requests at once and share one model after it.
pub fn find_faces(
    images: &[DynamicImage],
    options: &FaceOptions,
) -> Result<Vec<FoundFaces>, String> {
    let detector = options.detect.map(FaceDetector::new).transpose()?;
    Ok(images
        .par_iter()
        .map(|img| match &detector {
            None => FoundFaces {
                width: img.width(),
                height: img.height(),
                boxes: vec![None],
                planes: vec![to_face_plane(img)],
                capped: false,
            },
            Some(detector) => frame_faces(img, detector.detect(img), options.align),
        })
        .collect())
}

/// The 48x48 planes of the detected faces of `img`.
pub fn frame_faces(img: &DynamicImage, faces: Faces, align: bool) -> FoundFaces {
    let gray = img.to_luma8();
    let planes = faces
        .faces
        .iter()
        .map(|b| align::face_plane(&gray, b, align))
        .collect();
    FoundFaces {
        width: img.width(),
        height: img.height(),
        boxes: faces.faces.into_iter().map(Some).collect(),
        planes,
        capped: faces.capped,
    }
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
            capped: f.capped,
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

impl ImagePrediction {
    /// The JSON of one image, as `ferrite predict --json` and `ferrite serve` give it:
    /// `{"width", "height", "faces": [{"box", "score", "landmarks", "emotion", "probability",
    /// "probabilities": {class: p}}]}` (`box`, `score` and `landmarks` are null without
    /// detection; `landmarks` maps each of [`LANDMARKS`] to `[x, y]`), plus `"capped": true`
    /// when the face count reached [`MAX_FACES`](crate::detect::MAX_FACES).
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
                    "box": f.bbox.map(|b| json!({"x": round1(b.x), "y": round1(b.y), "width": round1(b.width), "height": round1(b.height)})),
                    "score": f.bbox.map(|b| (b.score * 1e4).round() / 1e4),
                    "landmarks": f.bbox.map(|b| {
                        LANDMARKS
                            .iter()
                            .zip(b.landmarks)
                            .map(|(name, [x, y])| (name.to_string(), json!([round1(x), round1(y)])))
                            .collect::<Map<String, Value>>()
                    }),
                    "emotion": classes[f.top],
                    "probability": f.probabilities[f.top],
                    "probabilities": probs,
                })
            })
            .collect();
        let mut out = json!({"width": self.width, "height": self.height, "faces": faces});
        if self.capped {
            out["capped"] = json!(true);
        }
        out
    }
}

/// Photo coordinates to one decimal: sub-pixel precision without float noise in the JSON.
fn round1(v: f32) -> f64 {
    (v as f64 * 10.0).round() / 10.0
}
