//! ferrite on video files: frames decoded by the `ffmpeg` program (a child process, never
//! linked), each sampled frame's faces found, framed and classified as `predict` does, faces
//! followed from frame to frame as tracks, and one row per sampled frame and face written as
//! they come (memory stays constant however long the video).

pub mod analyse;
pub mod animation;
pub mod decode;
pub mod encode;
pub mod track;

use std::path::Path;

pub use analyse::{AnalysedFrame, Analysis, Settings, TrackedFace};
pub use decode::{Frame, VideoError};
pub use encode::Encoder;
pub use track::Tracker;

/// The frames of a video file (through `ffmpeg`) or of an animated GIF or PNG (through the
/// `image` crate, no `ffmpeg` needed), in presentation order.
pub enum Video {
    Ffmpeg(decode::Frames),
    Animation(animation::Animation),
}

impl Video {
    /// Opens `path` for the frames between `start` and `end` seconds.
    pub fn open(path: &Path, start: Option<f64>, end: Option<f64>) -> Result<Video, VideoError> {
        Ok(if animation::is_animation(path) {
            Video::Animation(animation::Animation::open(path, start, end)?)
        } else {
            Video::Ffmpeg(decode::Frames::open(path, start, end)?)
        })
    }

    /// The next frame; `None` at the end.
    pub fn next_frame(&mut self) -> Option<Result<Frame, VideoError>> {
        match self {
            Video::Ffmpeg(f) => f.next_frame(),
            Video::Animation(a) => a.next_frame(),
        }
    }
}

/// Checks that `path` can be read as a video, before the work starts; its duration in
/// seconds when known.
pub fn check(path: &Path) -> Result<Option<f64>, VideoError> {
    if animation::is_animation(path) {
        return Ok(None);
    }
    Ok(decode::probe(path)?.duration)
}
