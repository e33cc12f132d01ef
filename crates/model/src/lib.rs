//! ferrite's models: the networks, their layer tables, and model files.

pub mod arch;
pub mod device;
pub mod file;
mod layers;
pub mod summary;

pub use arch::{ArchConfig, ArchKind, Network};
pub use file::{ModelFileError, ModelMeta};
