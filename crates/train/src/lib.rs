//! ferrite's training, evaluation and metrics.

pub mod average;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod metrics;
pub mod plot;
pub mod sam;
pub mod schedule;
pub mod score;
pub mod study;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{Log, Outcome, Start, TrainData, train};
