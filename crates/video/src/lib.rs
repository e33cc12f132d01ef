//! ferrite on video files: frames decoded by the `ffmpeg` program (a child process, never
//! linked), each sampled frame's faces found, framed and classified as `predict` does, faces
//! followed from frame to frame as tracks, and one row per sampled frame and face written as
//! they come (memory stays constant however long the video).

pub mod decode;
pub mod track;

pub use decode::{Frame, Frames, VideoError, probe};
pub use track::Tracker;
