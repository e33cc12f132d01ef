//! ferrite's models: the networks, their layer tables, and model files.

pub mod arch;
pub mod device;
pub mod ensemble;
pub mod file;
mod layers;
pub mod predict;
pub mod summary;

pub use arch::{ArchConfig, ArchKind, Network};
pub use ensemble::Ensemble;
/// The CPU kernels the layers run on (and the switch back to burn's operations).
pub use ferrite_kernels as kernels;
pub use file::{ModelFileError, ModelMeta};
