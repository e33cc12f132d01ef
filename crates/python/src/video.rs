//! `ferrite.video(path)`: the rows of a video, one per sampled frame and face, as `ferrite
//! video --csv` writes them, read lazily (memory holds one frame).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use ferrite_infer::detect::LANDMARKS;
use ferrite_video::{Analysis, Settings, TrackedFace, VideoError};
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{Model, face_options};

/// The rows of a video, one dict per sampled frame and face (and one per sampled frame
/// without a face, its face fields None), made as you iterate: `pandas.DataFrame(rows)`
/// gives the table `ferrite video --csv` writes.
///
/// Keys: frame (index among the decoded frames, from `start`), time (seconds, the
/// stream's own), track (stable id while a face stays on screen), x, y, width, height,
/// score, the five landmarks' <name>_x and <name>_y, emotion, then one probability per
/// class.
#[pyclass(module = "ferrite")]
pub struct VideoRows {
    model: Py<Model>,
    state: Mutex<State>,
}

struct State {
    analysis: Analysis,
    /// Rows of the last analysed frame not yet handed out.
    pending: VecDeque<(u64, f64, Option<TrackedFace>)>,
    done: bool,
}

/// The rows of a video file (anything the `ffmpeg` program reads; animated GIF and PNG
/// without it).
///
/// fps: frames to analyse per second of video, sampled by time (default: every frame).
/// start, end: the span to analyse, in seconds.
/// model: a ferrite.Model (default: the built-in model).
/// align, min_face, min_score, detect_size: as in Model.predict.
#[pyfunction]
#[pyo3(signature = (path, *, fps=None, start=None, end=None, model=None, align=true, min_face=16, min_score=0.6, detect_size=None))]
#[allow(clippy::too_many_arguments)]
pub fn video(
    py: Python<'_>,
    path: PathBuf,
    fps: Option<f64>,
    start: Option<f64>,
    end: Option<f64>,
    model: Option<Py<Model>>,
    align: bool,
    min_face: u32,
    min_score: f32,
    detect_size: Option<&Bound<'_, PyAny>>,
) -> PyResult<VideoRows> {
    let faces = face_options(true, align, min_face, min_score, detect_size)?;
    let settings = Settings {
        fps,
        start,
        end,
        faces,
    };
    settings.check().map_err(PyValueError::new_err)?;
    if !path.exists() {
        return Err(PyFileNotFoundError::new_err(format!(
            "{}: no such file",
            path.display()
        )));
    }
    let model = match model {
        Some(m) => m,
        None => Py::new(py, Model::new(py, None, "cpu")?)?,
    };
    let analysis = py
        .detach(|| Analysis::open(&path, &settings))
        .map_err(video_error)?;
    Ok(VideoRows {
        model,
        state: Mutex::new(State {
            analysis,
            pending: VecDeque::new(),
            done: false,
        }),
    })
}

fn video_error(e: VideoError) -> PyErr {
    match e {
        VideoError::NoFfmpeg(_) => PyRuntimeError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

#[pymethods]
impl VideoRows {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let model = self.model.get();
        let row = py.detach(|| -> Result<_, VideoError> {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            while state.pending.is_empty() && !state.done {
                match state.analysis.next_frame(&model.predictor) {
                    None => state.done = true,
                    Some(Err(e)) => {
                        state.done = true;
                        return Err(e);
                    }
                    Some(Ok(frame)) => {
                        let Some(faces) = frame.faces else { continue };
                        if faces.is_empty() {
                            state.pending.push_back((frame.index, frame.time, None));
                        }
                        for f in faces {
                            state.pending.push_back((frame.index, frame.time, Some(f)));
                        }
                    }
                }
            }
            Ok(state.pending.pop_front())
        });
        let Some((frame, time, face)) = row.map_err(video_error)? else {
            return Ok(None);
        };
        let classes = &model.predictor.meta().classes;
        let d = PyDict::new(py);
        d.set_item("frame", frame)?;
        d.set_item("time", time)?;
        let b = face.as_ref().map(|f| &f.bbox);
        d.set_item("track", face.as_ref().map(|f| f.track))?;
        d.set_item("x", b.map(|b| b.x))?;
        d.set_item("y", b.map(|b| b.y))?;
        d.set_item("width", b.map(|b| b.width))?;
        d.set_item("height", b.map(|b| b.height))?;
        d.set_item("score", b.map(|b| b.score))?;
        for (i, name) in LANDMARKS.iter().enumerate() {
            d.set_item(format!("{name}_x"), b.map(|b| b.landmarks[i][0]))?;
            d.set_item(format!("{name}_y"), b.map(|b| b.landmarks[i][1]))?;
        }
        d.set_item("emotion", face.as_ref().map(|f| classes[f.top].as_str()))?;
        for (c, class) in classes.iter().enumerate() {
            d.set_item(class, face.as_ref().map(|f| f.probabilities[c]))?;
        }
        Ok(Some(d))
    }
}
