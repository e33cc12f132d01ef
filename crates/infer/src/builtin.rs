//! The model every command uses when given no `--model`, embedded in the binary.
//!
//! `models/builtin.safetensors` is a copy of the model chosen as the default (see
//! `models/README.md` for which one it is and how it scored).

use burn::tensor::Device;
use ferrite_model::file::{self, ModelFileError};
use ferrite_model::{ModelMeta, Network};

/// The bytes of the built-in model file.
pub const BYTES: &[u8] = include_bytes!("../../../models/builtin.safetensors");

/// What `--model` shows for the built-in model in messages and JSON.
pub const NAME: &str = "built-in";

/// Loads the built-in model onto `device`.
pub fn load(device: &Device) -> Result<(Network, ModelMeta), ModelFileError> {
    file::from_bytes(BYTES.to_vec(), NAME, device)
}
