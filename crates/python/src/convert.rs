//! Python values to images and arrays, and JSON values to Python objects.

use std::path::PathBuf;

use ferrite_data::decode::{
    DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, decode_image, read_image_bytes,
};
use image::{DynamicImage, GrayImage, RgbImage};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyFileNotFoundError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString};
use serde_json::Value;

/// An image as Python gave it, taken out of Python's objects so that it can be decoded
/// without the GIL.
pub enum ImageInput {
    Path(PathBuf),
    Bytes(Vec<u8>),
    Pixels(DynamicImage),
}

impl ImageInput {
    /// Accepts a path (str or os.PathLike), bytes or bytearray (an image file's content), a
    /// numpy uint8 array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), or a PIL image.
    pub fn extract(obj: &Bound<'_, PyAny>, bgr: bool) -> PyResult<ImageInput> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(ImageInput::Bytes(b.as_bytes().to_vec()));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(ImageInput::Bytes(b.to_vec()));
        }
        if obj.is_instance_of::<PyString>() || obj.hasattr("__fspath__")? {
            return Ok(ImageInput::Path(obj.extract()?));
        }
        if obj.is_instance_of::<PyUntypedArray>() {
            return Ok(ImageInput::Pixels(array_image(obj, bgr)?));
        }
        // A PIL image: its pixels as an array, in a mode the array reader takes.
        if obj.hasattr("convert")? && obj.hasattr("mode")? {
            let mode: String = obj.getattr("mode")?.extract()?;
            let obj = match mode.as_str() {
                "L" | "RGB" | "RGBA" => obj.clone(),
                _ => obj.call_method1("convert", ("RGB",))?,
            };
            let array = obj.py().import("numpy")?.call_method1("asarray", (obj,))?;
            return Ok(ImageInput::Pixels(array_image(&array, false)?));
        }
        Err(PyTypeError::new_err(format!(
            "expected an image: a path, bytes, a numpy uint8 array or a PIL image, got {}",
            obj.get_type().name()?
        )))
    }

    /// Decodes a file or bytes as `ferrite predict` does (same limits, same messages).
    pub fn decode(self) -> PyResult<DynamicImage> {
        match self {
            ImageInput::Pixels(img) => Ok(img),
            ImageInput::Bytes(bytes) => decode_image(&bytes, DEFAULT_MAX_PIXELS)
                .map_err(|e| PyValueError::new_err(e.to_string())),
            ImageInput::Path(path) => {
                let name = path.display();
                let file = std::fs::File::open(&path).map_err(|e| {
                    let message = format!("{name}: cannot read the file: {e}");
                    if e.kind() == std::io::ErrorKind::NotFound {
                        PyFileNotFoundError::new_err(message)
                    } else {
                        PyValueError::new_err(message)
                    }
                })?;
                let bytes = read_image_bytes(file, DEFAULT_MAX_FILE_BYTES)
                    .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
                decode_image(&bytes, DEFAULT_MAX_PIXELS)
                    .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
            }
        }
    }
}

/// `obj` as a numpy uint8 array, or a clear error naming `what`.
pub fn uint8_array<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyArrayDyn<u8>>> {
    let untyped = obj.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what}: expected a numpy uint8 array, got {}",
            obj.get_type().name().map_or("?".into(), |n| n.to_string())
        ))
    })?;
    let dtype = untyped.dtype().to_string();
    obj.cast::<PyArrayDyn<u8>>().cloned().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what}: expected dtype uint8, got {dtype} (scale to 0-255 and use .astype(numpy.uint8))"
        ))
    })
}

/// The pixels of an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array, in any memory
/// layout (slices and channel-reversed views too); alpha is dropped.
fn array_image(obj: &Bound<'_, PyAny>, bgr: bool) -> PyResult<DynamicImage> {
    let array = uint8_array(obj, "image")?;
    let shape = array.shape().to_vec();
    let (h, w, c) = match shape.as_slice() {
        [h, w] => (*h, *w, 1),
        [h, w, c] if matches!(c, 1 | 3 | 4) => (*h, *w, *c),
        _ => {
            return Err(PyValueError::new_err(format!(
                "image: expected an array of shape (H, W), (H, W, 3) or (H, W, 4), got {shape:?}"
            )));
        }
    };
    if h == 0 || w == 0 {
        return Err(PyValueError::new_err(format!(
            "image: the array has no pixels ({w}x{h})"
        )));
    }
    if (h as u64) * (w as u64) > DEFAULT_MAX_PIXELS
        || h > u32::MAX as usize
        || w > u32::MAX as usize
    {
        return Err(PyValueError::new_err(format!(
            "image: {w}x{h} pixels; the limit is {DEFAULT_MAX_PIXELS}"
        )));
    }
    let readonly = array.readonly();
    let view = readonly.as_array();
    let (w32, h32) = (w as u32, h as u32);
    if c == 1 {
        let pixels: Vec<u8> = view.iter().copied().collect();
        return Ok(DynamicImage::ImageLuma8(
            GrayImage::from_raw(w32, h32, pixels).expect("h*w pixels"),
        ));
    }
    let mut pixels = Vec::with_capacity(h * w * 3);
    for row in view.outer_iter() {
        for px in row.outer_iter() {
            let (r, g, b) = if bgr {
                (px[2], px[1], px[0])
            } else {
                (px[0], px[1], px[2])
            };
            pixels.extend_from_slice(&[r, g, b]);
        }
    }
    Ok(DynamicImage::ImageRgb8(
        RgbImage::from_raw(w32, h32, pixels).expect("h*w*3 values"),
    ))
}

/// A JSON value as the Python object `json.loads` would give.
pub fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(f)) => f.into_pyobject(py)?.into_any(),
            _ => n.to_string().into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
