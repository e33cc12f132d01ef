//! The `last.ckpt` checkpoint: everything a run needs to continue exactly where it stopped.
//!
//! One file, written atomically: a safetensors container whose tensors are opaque byte
//! blobs (the network in burn's burnpack format, which keeps parameter ids so that the
//! optimiser state still matches; the optimiser state) and whose metadata holds the run
//! state as JSON; with `--average`, also the weight average so far (a third blob) and its
//! count. A crash leaves either the previous checkpoint or the new one.

use std::collections::HashMap;
use std::path::Path;

use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Bytes, Device};
use ferrite_model::{ArchConfig, Network};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::average::Average;
use crate::config::TrainConfig;
use crate::schedule::Schedule;

const FORMAT: &str = "ferrite-checkpoint";
const VERSION: &str = "1";

/// Sums over the batches of an epoch so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Running {
    pub batches: usize,
    pub seen: usize,
    pub correct: usize,
    pub loss_sum: f64,
    pub seconds: f64,
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Epochs fully done.
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub step: usize,
    pub schedule: Schedule,
    pub best_val_accuracy: f64,
    pub best_epoch: usize,
    /// The epoch in progress when the run was interrupted mid-epoch (Ctrl-C).
    pub partial: Option<Running>,
}

/// A checkpoint, read back.
pub struct Checkpoint {
    pub config: TrainConfig,
    pub arch: ArchConfig,
    pub state: RunState,
    pub net: Network,
    pub optimizer: ModuleOptimizer,
    /// The weight average so far (`--average`), once it has begun.
    pub average: Option<Average>,
}

/// Writes a checkpoint atomically.
pub fn save(
    path: &Path,
    config: &TrainConfig,
    arch: &ArchConfig,
    state: &RunState,
    net: &Network,
    optimizer: &ModuleOptimizer,
    average: Option<&Average>,
) -> Result<(), String> {
    let model = pack(net)?;
    let optim = optimizer
        .into_bytes()
        .map_err(|e| format!("cannot pack the optimiser state: {e:?}"))?;
    let packed_average = average.map(|a| pack(&a.net)).transpose()?;
    let mut tensors = vec![
        ("model".to_string(), blob(&model)?),
        ("optimizer".to_string(), blob(&optim)?),
    ];
    if let Some(bytes) = &packed_average {
        tensors.push(("average".to_string(), blob(bytes)?));
    }
    let mut metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("format_version".to_string(), VERSION.to_string()),
        ("config".to_string(), to_json(config)),
        ("arch".to_string(), to_json(arch)),
        ("state".to_string(), to_json(state)),
    ]);
    if let Some(a) = average {
        metadata.insert("averaged".to_string(), a.count.to_string());
    }
    let bytes = safetensors::serialize(tensors, Some(metadata)).map_err(|e| e.to_string())?;
    ferrite_data::atomic::write_atomic(path, &bytes)
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// Reads a checkpoint; the optimiser given is filled with the saved state.
pub fn load(
    path: &Path,
    device: &Device,
    optimizer: ModuleOptimizer,
) -> Result<Checkpoint, String> {
    let name = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| format!("{name}: corrupt checkpoint: {e}"))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| format!("{name}: corrupt checkpoint: {e}"))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(format!("{name}: not a ferrite checkpoint"));
    }
    if meta.get("format_version").map(String::as_str) != Some(VERSION) {
        return Err(format!(
            "{name}: checkpoint version {:?} is not {VERSION}",
            meta.get("format_version")
        ));
    }
    fn field<T: for<'de> Deserialize<'de>>(
        meta: &HashMap<String, String>,
        key: &str,
    ) -> Result<T, String> {
        let text = meta.get(key).ok_or_else(|| format!("missing `{key}`"))?;
        serde_json::from_str(text).map_err(|e| format!("unreadable `{key}`: {e}"))
    }
    let config: TrainConfig = field(&meta, "config").map_err(|e| format!("{name}: {e}"))?;
    let arch: ArchConfig = field(&meta, "arch").map_err(|e| format!("{name}: {e}"))?;
    let state: RunState = field(&meta, "state").map_err(|e| format!("{name}: {e}"))?;
    let blob = |key: &str| -> Result<Vec<u8>, String> {
        Ok(st
            .tensor(key)
            .map_err(|e| format!("{name}: corrupt checkpoint: {e}"))?
            .data()
            .to_vec())
    };
    let unpack = |bytes: Vec<u8>| -> Result<Network, String> {
        let mut net = arch.init(device);
        let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
        let applied = net
            .load_from(&mut store)
            .map_err(|e| format!("{name}: cannot restore the network: {e}"))?;
        if !applied.missing.is_empty() || !applied.errors.is_empty() {
            return Err(format!(
                "{name}: the network in the checkpoint does not match its architecture"
            ));
        }
        Ok(net)
    };
    let net = unpack(blob("model")?)?;
    let average = match meta.get("averaged") {
        Some(count) => Some(Average {
            net: unpack(blob("average")?)?,
            count: count
                .parse()
                .map_err(|_| format!("{name}: unreadable `averaged`: {count:?}"))?,
        }),
        None => None,
    };
    let optimizer = optimizer
        .from_bytes(Bytes::from_bytes_vec(blob("optimizer")?))
        .map_err(|e| format!("{name}: cannot restore the optimiser: {e:?}"))?;
    Ok(Checkpoint {
        config,
        arch,
        state,
        net,
        optimizer,
        average,
    })
}

fn pack(net: &Network) -> Result<Bytes, String> {
    let mut store = BurnpackStore::from_bytes(None);
    net.save_into(&mut store)
        .map_err(|e| format!("cannot pack the network: {e}"))?;
    store
        .get_bytes()
        .map_err(|e| format!("cannot pack the network: {e}"))
}

fn blob(bytes: &[u8]) -> Result<TensorView<'_>, String> {
    TensorView::new(Dtype::U8, vec![bytes.len()], bytes).map_err(|e| e.to_string())
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("run metadata serialises to JSON")
}
