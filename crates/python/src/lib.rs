//! The Python module `ferrite`: the built-in (or any) model, emotions from paths, bytes,
//! numpy arrays and PIL images, ready 48x48 face crops, and video files as rows.
//!
//! A thin layer: images become `DynamicImage`s and results become the JSON that
//! `ferrite predict --json` prints, turned into Python objects, so both always agree. The
//! work runs with the GIL released, so a `Model` serves several Python threads at once.

mod convert;
mod video;

use std::path::PathBuf;

use ferrite_data::face::{PIXELS, SIDE};
use ferrite_infer::detect::{DetectOptions, DetectSize};
use ferrite_infer::predict::{FaceOptions, Predictor, predict_images};
use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::convert::{ImageInput, json_to_py};

/// A facial expression model, ready to predict.
///
/// Model(path=None, device="cpu")
///
/// path: a model file written by `ferrite train` (.safetensors), or a list of them, run as
///     an ensemble (probabilities averaged); None for the built-in model.
/// device: "cpu", or "gpu" / "gpu:N" in a build with the `gpu` feature.
///
/// A Model is safe to share between threads; calls release the GIL while they work.
#[pyclass(frozen, module = "ferrite")]
struct Model {
    predictor: Predictor,
}

/// How faces are found and framed: the keyword arguments of `predict` and `video`.
fn face_options(
    detect: bool,
    align: bool,
    min_face: u32,
    min_score: f32,
    detect_size: Option<&Bound<'_, PyAny>>,
) -> PyResult<FaceOptions> {
    let size: DetectSize = match detect_size {
        Some(name) => detect_size_name(name)?
            .parse()
            .map_err(|e: String| PyValueError::new_err(format!("detect_size: {e}")))?,
        None => DetectOptions::default().size,
    };
    let options = DetectOptions {
        min_face,
        min_score,
        size,
    };
    options.check().map_err(PyValueError::new_err)?;
    Ok(FaceOptions {
        detect: detect.then_some(options),
        align,
    })
}

/// `detect_size` as the command line spells it: a number or "full".
fn detect_size_name(detect_size: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(if let Ok(n) = detect_size.extract::<u32>() {
        n.to_string()
    } else if let Ok(s) = detect_size.extract::<String>() {
        s
    } else {
        return Err(PyTypeError::new_err(
            "detect_size: expected a number of pixels or \"full\"",
        ));
    })
}

#[pymethods]
impl Model {
    #[new]
    #[pyo3(signature = (path=None, device="cpu"))]
    fn new(py: Python<'_>, path: Option<&Bound<'_, PyAny>>, device: &str) -> PyResult<Model> {
        let paths: Vec<PathBuf> = match path {
            None => Vec::new(),
            Some(p) if p.is_instance_of::<PyString>() || p.hasattr("__fspath__")? => {
                vec![p.extract()?]
            }
            Some(p) => {
                let paths: Vec<PathBuf> = p.extract().map_err(|_| {
                    PyTypeError::new_err("path: expected a path, a list of paths or None")
                })?;
                // An empty list is more likely a mistake than a wish for the built-in model.
                if paths.is_empty() {
                    return Err(PyValueError::new_err(
                        "path: an empty list of models (None loads the built-in model)",
                    ));
                }
                paths
            }
        };
        let device = ferrite_model::device::parse(device).map_err(PyValueError::new_err)?;
        let predictor = py.detach(|| Predictor::load(&paths, device)).map_err(|e| {
            let message = format!("cannot load model: {e}");
            if paths.iter().any(|p| !p.exists()) {
                PyFileNotFoundError::new_err(message)
            } else {
                PyValueError::new_err(message)
            }
        })?;
        Ok(Model { predictor })
    }

    /// The class names, in the order of the probabilities.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.predictor.meta().classes.clone()
    }

    /// What the model is: source, models (how many are averaged), arch, dataset, classes,
    /// input size, the split it was chosen on and its accuracy there, epochs, the ferrite
    /// version that wrote it (of the first model of an ensemble).
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let meta = self.predictor.meta();
        let info = serde_json::json!({
            "source": self.predictor.source,
            "models": self.predictor.models(),
            "arch": meta.arch.arch.to_string(),
            "dataset": meta.dataset,
            "classes": meta.classes,
            "input_size": [meta.input_side, meta.input_side],
            "val_split": meta.val_split,
            "val_accuracy": meta.val_accuracy,
            "epochs": meta.epochs,
            "created_by": meta.created_by,
        });
        json_to_py(py, &info)
    }

    fn __repr__(&self) -> String {
        let meta = self.predictor.meta();
        format!(
            "ferrite.Model({}: {}, {}, {} classes)",
            self.predictor.source,
            meta.arch.arch,
            meta.dataset,
            meta.classes.len()
        )
    }

    /// The faces of one image, each a dict with the fields of `ferrite predict --json`:
    /// box {x, y, width, height}, score (detector), landmarks {name: [x, y]}, emotion (the
    /// top class), probability (its probability), probabilities {class: p}.
    ///
    /// image: a path (str or os.PathLike), the bytes of an image file, a numpy uint8 array
    ///     (H, W) gray, (H, W, 3) colour or (H, W, 4) with alpha, or a PIL image.
    /// channels: the channel order of a colour array: "RGB" (numpy, PIL) or "BGR" (OpenCV).
    /// detect: find faces (default); False takes the whole image as one face crop (box,
    ///     score and landmarks are then None).
    /// align: turn each face upright by its eye line before classifying (default).
    /// min_face: smallest face kept, in pixels (longer side of its box).
    /// min_score: smallest detector score kept (0..1).
    /// detect_size: the longest side the image is searched at, or "full" for crowds of
    ///     small faces in large photos.
    #[pyo3(signature = (image, *, channels="RGB", detect=true, align=true, min_face=16, min_score=0.6, detect_size=None))]
    #[allow(clippy::too_many_arguments)]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
        channels: &str,
        detect: bool,
        align: bool,
        min_face: u32,
        min_score: f32,
        detect_size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let many = self.predict_many(
            py,
            PyList::new(py, [image])?.as_any(),
            channels,
            detect,
            align,
            min_face,
            min_score,
            detect_size,
        )?;
        many.get_item(0)
    }

    /// `predict` for many images at once, faces of all of them classified in shared
    /// batches: a list with one list of faces per image. Same keyword arguments.
    #[pyo3(signature = (images, *, channels="RGB", detect=true, align=true, min_face=16, min_score=0.6, detect_size=None))]
    #[allow(clippy::too_many_arguments)]
    fn predict_many<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
        channels: &str,
        detect: bool,
        align: bool,
        min_face: u32,
        min_score: f32,
        detect_size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = face_options(detect, align, min_face, min_score, detect_size)?;
        let bgr = match channels {
            "RGB" | "rgb" => false,
            "BGR" | "bgr" => true,
            other => {
                return Err(PyValueError::new_err(format!(
                    "channels: expected \"RGB\" or \"BGR\", got {other:?}"
                )));
            }
        };
        // Gather the inputs with the GIL (arrays are copied out), decode and predict
        // without it.
        let inputs: Vec<ImageInput> = images
            .try_iter()
            .map_err(|_| PyTypeError::new_err("images: expected an iterable of images"))?
            .map(|item| ImageInput::extract(&item?, bgr))
            .collect::<PyResult<_>>()?;
        let predictor = &self.predictor;
        let predictions = py.detach(|| -> PyResult<_> {
            let images = inputs
                .into_iter()
                .map(ImageInput::decode)
                .collect::<PyResult<Vec<_>>>()?;
            predict_images(&images, &options, predictor).map_err(PyRuntimeError::new_err)
        })?;
        let out = PyList::empty(py);
        for p in &predictions {
            let doc = p.to_json(&predictor.meta().classes);
            out.append(json_to_py(py, &doc["faces"])?)?;
        }
        Ok(out.into_any())
    }

    /// Class probabilities of ready face crops: `faces` is a uint8 array (N, 48, 48), or
    /// (48, 48) for one face, framed like FER2013's; returns float32 (N, classes) (or
    /// (classes,)), in the order of `classes`. No detection, no framing.
    fn classify<'py>(
        &self,
        py: Python<'py>,
        faces: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let array = convert::uint8_array(faces, "faces")?;
        let shape = array.shape().to_vec();
        let one = match shape.as_slice() {
            [SIDE, SIDE] => true,
            [_, SIDE, SIDE] => false,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "faces: expected shape (N, {SIDE}, {SIDE}) or ({SIDE}, {SIDE}), got {shape:?}"
                )));
            }
        };
        let readonly: PyReadonlyArrayDyn<'py, u8> = array.readonly();
        let view = readonly.as_array();
        let planes: Vec<[u8; PIXELS]> = if one {
            let mut plane = [0u8; PIXELS];
            plane.iter_mut().zip(view.iter()).for_each(|(d, s)| *d = *s);
            vec![plane]
        } else {
            view.outer_iter()
                .map(|face| {
                    let mut plane = [0u8; PIXELS];
                    plane.iter_mut().zip(face.iter()).for_each(|(d, s)| *d = *s);
                    plane
                })
                .collect()
        };
        drop(readonly);
        let predictor = &self.predictor;
        let probabilities = py.detach(|| predictor.classify(&planes));
        let classes = predictor.meta().classes.len();
        let flat: Vec<f32> = probabilities.into_iter().flatten().collect();
        let out: Bound<'py, PyArray2<f32>> =
            flat.into_pyarray(py).reshape([planes.len(), classes])?;
        Ok(if one {
            out.get_item(0)?.into_any()
        } else {
            out.into_any()
        })
    }
}

/// ferrite: facial expression recognition. `ferrite.Model()` loads the built-in model;
/// `model.predict(image)` gives the faces of a photo with their emotions;
/// `ferrite.video(path)` the rows of a video, one per frame and face.
#[pymodule]
#[pyo3(name = "ferrite")]
fn ferrite_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_class::<video::VideoRows>()?;
    m.add_function(wrap_pyfunction!(video::video, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
