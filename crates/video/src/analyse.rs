//! A video's frames in order, each sampled one with its faces found, framed, classified and
//! given track ids: what `ferrite video` and the Python `ferrite.video` are built on.

use std::path::Path;
use std::time::{Duration, Instant};

use ferrite_infer::detect::{FaceBox, FaceDetector};
use ferrite_infer::predict::{FaceOptions, Predictor, classify_faces, frame_faces};
use image::{DynamicImage, RgbImage};

use crate::{Tracker, Video, VideoError};

/// Which frames to analyse, and how faces are found.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Frames to analyse per second of video, sampled by time; `None`: every frame.
    pub fps: Option<f64>,
    /// Start and end, in seconds of the stream's own time.
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub faces: FaceOptions,
}

impl Settings {
    /// Every frame of the whole video, faces found and framed as `predict` does.
    pub fn new(faces: FaceOptions) -> Settings {
        Settings {
            fps: None,
            start: None,
            end: None,
            faces,
        }
    }

    /// The error a user should see for settings that cannot work.
    pub fn check(&self) -> Result<(), String> {
        if self.fps.is_some_and(|f| !(f > 0.0 && f.is_finite())) {
            return Err("fps must be a positive number".into());
        }
        if let (Some(s), Some(e)) = (self.start, self.end)
            && e <= s
        {
            return Err("end must be after start".into());
        }
        match self.faces.detect {
            Some(d) => d.check(),
            None => Err("videos need face detection".into()),
        }
    }
}

/// A face of an analysed frame.
#[derive(Debug, Clone)]
pub struct TrackedFace {
    /// Stable while the face stays on screen; from 1, in order of appearance.
    pub track: u64,
    pub bbox: FaceBox,
    /// In the model's class order.
    pub probabilities: Vec<f32>,
    pub top: usize,
}

/// One decoded frame.
pub struct AnalysedFrame {
    /// Position among the frames decoded (from the start point when one was given).
    pub index: u64,
    /// Presentation time in seconds, the stream's own.
    pub time: f64,
    pub image: RgbImage,
    /// Its faces when the frame was sampled (possibly none); `None` between samples.
    pub faces: Option<Vec<TrackedFace>>,
}

/// Where the time went, summed over the analysed frames.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    /// Waiting for the next decoded frame (ffmpeg decodes ahead, in its own process).
    pub decode: Duration,
    pub detect: Duration,
    /// Framing and classifying the faces found.
    pub classify: Duration,
}

/// The frames of one video, analysed as they are read: memory holds one frame.
pub struct Analysis {
    frames: Video,
    detector: FaceDetector,
    align: bool,
    fps: Option<f64>,
    next_sample: f64,
    tracker: Tracker,
    /// Frames analysed so far.
    pub sampled: u64,
    pub timings: Timings,
}

impl Analysis {
    pub fn open(path: &Path, settings: &Settings) -> Result<Analysis, VideoError> {
        settings.check().map_err(VideoError::Settings)?;
        let detect = settings.faces.detect.expect("checked");
        Ok(Analysis {
            frames: Video::open(path, settings.start, settings.end)?,
            detector: FaceDetector::new(detect).map_err(VideoError::Settings)?,
            align: settings.faces.align,
            fps: settings.fps,
            next_sample: f64::NEG_INFINITY,
            // Faces missed for up to a second keep their track.
            tracker: Tracker::new(settings.fps.unwrap_or(30.0).ceil() as u32),
            sampled: 0,
            timings: Timings::default(),
        })
    }

    /// The next frame, analysed with `predictor` when it is a sample; `None` at the end.
    pub fn next_frame(
        &mut self,
        predictor: &Predictor,
    ) -> Option<Result<AnalysedFrame, VideoError>> {
        let clock = Instant::now();
        let frame = match self.frames.next_frame()? {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        self.timings.decode += clock.elapsed();
        if !self.is_sample(frame.time) {
            return Some(Ok(AnalysedFrame {
                index: frame.index,
                time: frame.time,
                image: frame.image,
                faces: None,
            }));
        }
        self.sampled += 1;
        let clock = Instant::now();
        let image = DynamicImage::ImageRgb8(frame.image);
        let found = self.detector.detect(&image);
        self.timings.detect += clock.elapsed();
        let clock = Instant::now();
        let found = frame_faces(&image, found, self.align);
        let prediction = classify_faces(vec![found], predictor).remove(0);
        self.timings.classify += clock.elapsed();
        let boxes: Vec<FaceBox> = prediction.faces.iter().filter_map(|f| f.bbox).collect();
        let tracks = self.tracker.update(&boxes);
        let faces = prediction
            .faces
            .into_iter()
            .zip(tracks)
            .map(|(f, track)| TrackedFace {
                track,
                bbox: f.bbox.expect("detected faces have boxes"),
                probabilities: f.probabilities,
                top: f.top,
            })
            .collect();
        let DynamicImage::ImageRgb8(image) = image else {
            unreachable!("made RGB above")
        };
        Some(Ok(AnalysedFrame {
            index: frame.index,
            time: frame.time,
            image,
            faces: Some(faces),
        }))
    }

    /// Whether the frame at `time` is analysed: all are without `fps`; with it, the first
    /// frame at or after each tick of a grid started by the first frame.
    fn is_sample(&mut self, time: f64) -> bool {
        let Some(fps) = self.fps else {
            return true;
        };
        if time + 1e-9 < self.next_sample {
            return false;
        }
        if !self.next_sample.is_finite() {
            self.next_sample = time;
        }
        while self.next_sample <= time + 1e-9 {
            self.next_sample += 1.0 / fps;
        }
        true
    }
}
