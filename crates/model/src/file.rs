//! Self-describing model files: safetensors weights plus ferrite metadata.
//!
//! The safetensors header's `__metadata__` holds:
//! - `format` = `ferrite-model`, `format_version` = [`FORMAT_VERSION`];
//! - `ferrite` = a JSON [`ModelMeta`]: architecture, classes, input, normalisation,
//!   dataset and validation score;
//! - `data_crc32` = CRC-32 of the tensor data, so a corrupted file is refused instead of
//!   giving silently wrong predictions.
//!
//! Any command that takes `--model` needs nothing but this file.

use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use ferrite_data::augment::Normalization;
use serde::{Deserialize, Serialize};

use crate::arch::{ArchConfig, INPUT_SIDE, Network};

pub const FORMAT: &str = "ferrite-model";
pub const FORMAT_VERSION: u32 = 1;

/// What a model file says about its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub arch: ArchConfig,
    /// Class names in output order.
    pub classes: Vec<String>,
    pub input_side: usize,
    pub input_channels: usize,
    pub normalization: Normalization,
    /// Dataset it was trained on, e.g. "FER2013" or "FERPlus (distribution)".
    pub dataset: String,
    /// Split the model was selected on and its accuracy there.
    pub val_split: Option<String>,
    pub val_accuracy: Option<f64>,
    /// Epochs of training behind these weights.
    pub epochs: usize,
    /// Weight averaging: the weights are the mean of those of this many final epochs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub averaged_epochs: usize,
    /// The ferrite version that wrote the file.
    pub created_by: String,
}

impl ModelMeta {
    pub fn new(arch: ArchConfig, classes: Vec<String>, dataset: &str) -> Self {
        ModelMeta {
            arch,
            classes,
            input_side: INPUT_SIDE,
            input_channels: 1,
            normalization: Normalization::default(),
            dataset: dataset.into(),
            val_split: None,
            val_accuracy: None,
            epochs: 0,
            averaged_epochs: 0,
            created_by: format!("ferrite {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a ferrite model: {reason}")]
    NotAModel { path: String, reason: String },
    #[error(
        "{path}: model format version {found} is newer than this ferrite understands ({FORMAT_VERSION}); upgrade ferrite"
    )]
    FutureVersion { path: String, found: u32 },
    #[error("{path}: the file is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("{path}: the weights do not fit a {arch} network: {reason}")]
    WrongArchitecture {
        path: String,
        arch: String,
        reason: String,
    },
    #[error("cannot save model: {0}")]
    Save(String),
}

/// Serialises a network and its metadata to model-file bytes.
pub fn to_bytes(net: &Network, meta: &ModelMeta) -> Result<Vec<u8>, ModelFileError> {
    let meta_json = serde_json::to_string(meta).map_err(|e| ModelFileError::Save(e.to_string()))?;
    let build = |crc: Option<u32>| -> Result<Vec<u8>, ModelFileError> {
        let mut store = SafetensorsStore::from_bytes(None)
            .metadata("format", FORMAT)
            .metadata("format_version", FORMAT_VERSION.to_string())
            .metadata("ferrite", meta_json.clone());
        if let Some(crc) = crc {
            store = store.metadata("data_crc32", crc.to_string());
        }
        net.save_into(&mut store)
            .map_err(|e| ModelFileError::Save(e.to_string()))?;
        store
            .get_bytes()
            .map_err(|e| ModelFileError::Save(e.to_string()))
    };
    // The CRC covers the tensor data only, which the metadata does not change: write once
    // to learn it, then again with it in the header.
    let first = build(None)?;
    let crc = crc32fast::hash(
        data_section(&first)
            .ok_or_else(|| ModelFileError::Save("bad safetensors layout".into()))?,
    );
    build(Some(crc))
}

/// Saves a model file atomically.
pub fn save(path: &Path, net: &Network, meta: &ModelMeta) -> Result<(), ModelFileError> {
    let bytes = to_bytes(net, meta)?;
    ferrite_data::atomic::write_atomic(path, &bytes)
        .map_err(|e| ModelFileError::Save(format!("{}: {e}", path.display())))
}

/// Reads only the metadata of a model file (checked as in [`load`], weights excepted).
pub fn read_meta(path: &Path) -> Result<ModelMeta, ModelFileError> {
    let bytes = read(path)?;
    parse_meta(&bytes, &path.display().to_string())
}

/// Loads a model file onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<(Network, ModelMeta), ModelFileError> {
    let bytes = read(path)?;
    from_bytes(bytes, &path.display().to_string(), device)
}

/// Loads a model from model-file bytes (`name` is used in errors).
pub fn from_bytes(
    bytes: Vec<u8>,
    name: &str,
    device: &Device,
) -> Result<(Network, ModelMeta), ModelFileError> {
    let meta = parse_meta(&bytes, name)?;
    let mut net = meta.arch.init(device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(true);
    let wrong = |reason: String| ModelFileError::WrongArchitecture {
        path: name.into(),
        arch: meta.arch.arch.to_string(),
        reason,
    };
    let result = net
        .load_from(&mut store)
        .map_err(|e| wrong(e.to_string()))?;
    if !result.missing.is_empty() || !result.unused.is_empty() || !result.errors.is_empty() {
        let mut parts = Vec::new();
        if !result.missing.is_empty() {
            parts.push(format!(
                "{} missing tensor(s), e.g. {}",
                result.missing.len(),
                result.missing[0].0
            ));
        }
        if !result.unused.is_empty() {
            parts.push(format!(
                "{} unexpected tensor(s), e.g. {}",
                result.unused.len(),
                result.unused[0]
            ));
        }
        if let Some(e) = result.errors.first() {
            parts.push(format!("{} mismatch(es), e.g. {e}", result.errors.len()));
        }
        return Err(wrong(parts.join("; ")));
    }
    Ok((net, meta))
}

/// The bytes of a model file, for [`from_bytes`].
pub fn read(path: &Path) -> Result<Vec<u8>, ModelFileError> {
    std::fs::read(path).map_err(|source| ModelFileError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The tensor data after the 8-byte length and the JSON header.
fn data_section(bytes: &[u8]) -> Option<&[u8]> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    bytes.get(8usize.checked_add(n)?..)
}

fn parse_meta(bytes: &[u8], name: &str) -> Result<ModelMeta, ModelFileError> {
    let not_model = |reason: &str| ModelFileError::NotAModel {
        path: name.into(),
        reason: reason.into(),
    };
    let corrupt = |reason: String| ModelFileError::Corrupt {
        path: name.into(),
        reason,
    };
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| {
        use safetensors::SafeTensorError as E;
        match e {
            E::HeaderTooSmall
            | E::HeaderTooLarge
            | E::InvalidHeaderLength
            | E::MetadataIncompleteBuffer => {
                corrupt(format!("truncated or not a safetensors file ({e})"))
            }
            _ => corrupt(format!("unreadable safetensors header ({e})")),
        }
    })?;
    let info = header
        .metadata()
        .as_ref()
        .ok_or_else(|| not_model("a safetensors file without ferrite metadata"))?;
    if info.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(not_model("a safetensors file without ferrite metadata"));
    }
    let version: u32 = info
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt("missing or unreadable format_version".into()))?;
    if version > FORMAT_VERSION {
        return Err(ModelFileError::FutureVersion {
            path: name.into(),
            found: version,
        });
    }
    let expected_crc: u32 = info
        .get("data_crc32")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt("missing data checksum".into()))?;
    let data = data_section(bytes).ok_or_else(|| corrupt("truncated".into()))?;
    if crc32fast::hash(data) != expected_crc {
        return Err(corrupt(
            "the weights fail their checksum (the file was truncated or altered)".into(),
        ));
    }
    let meta: ModelMeta = info
        .get("ferrite")
        .ok_or_else(|| corrupt("missing ferrite metadata".into()))
        .and_then(|j| {
            serde_json::from_str(j)
                .map_err(|e| corrupt(format!("unreadable ferrite metadata ({e})")))
        })?;
    if meta.classes.len() != meta.arch.num_classes || meta.classes.is_empty() {
        return Err(corrupt(format!(
            "{} class names for {} outputs",
            meta.classes.len(),
            meta.arch.num_classes
        )));
    }
    if meta.input_side != INPUT_SIDE || meta.input_channels != 1 {
        return Err(not_model(&format!(
            "input {}x{}x{} is not the 1x{INPUT_SIDE}x{INPUT_SIDE} this ferrite runs",
            meta.input_channels, meta.input_side, meta.input_side
        )));
    }
    Ok(meta)
}
