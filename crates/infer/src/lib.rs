//! ferrite on real photos: find the faces, cut them out the way FER2013 faces are framed,
//! classify them in batches, and draw the answers back onto the photo.

pub mod align;
pub mod annotate;
pub mod builtin;
pub mod detect;
pub mod predict;

pub use detect::{DetectOptions, FaceBox, FaceDetector};
pub use predict::{FacePrediction, ImagePrediction, Predictor};
