//! ferrite's data layer.
//!
//! Every source (FER2013 CSV, FERPlus votes, image folders) is loaded into one
//! [`Dataset`]: 48x48 u8 face planes with class labels, grouped into splits. The training
//! input pipeline ([`augment`], [`loader`]) turns splits into augmented f32 batches on
//! worker threads; [`mix`] mixes the faces of a batch (mixup, CutMix).

pub mod atomic;
pub mod augment;
pub mod check;
pub mod classes;
pub mod dataset;
pub mod decode;
pub mod export;
pub mod face;
pub mod fer2013;
pub mod ferplus;
pub mod folder;
pub mod folds;
mod input;
pub mod loader;
pub mod mix;
pub mod perturb;
pub mod problem;
pub mod sheet;
pub mod source;

pub use classes::Emotion;
pub use dataset::{Dataset, Origin, Samples, Split, SplitRole};
pub use problem::{DataError, Problem, Problems};
pub use source::DataSource;
