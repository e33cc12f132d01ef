//! The unit of cross-validation and learning curves: train on one set, select the epoch on
//! a second, score the selected model once on a held-out test set.

use std::path::Path;

use burn::tensor::Device;
use ferrite_data::Samples;

use crate::config::TrainConfig;
use crate::metrics::Confusion;
use crate::trainer::{BEST, Log, Outcome, Start, TrainData, train, validate};

/// A trained model's scores on its test set.
#[derive(Debug, Clone)]
pub struct Scores {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub confusion: Confusion,
    /// Epoch of the model that was selected on the validation set.
    pub epoch: usize,
    pub seconds: f64,
}

/// Trains `config` from `start` on `data` into `out`, then scores the best-validation model
/// on `test` (same classes as `data`). `stop` is the training loop's interrupt check; an
/// interrupted run is an error here (its scores would mean nothing).
pub fn fit_and_score(
    data: &TrainData,
    test: &Samples,
    config: TrainConfig,
    start: Start,
    out: &Path,
    device: &Device,
    stop: &dyn Fn(usize) -> bool,
) -> Result<Scores, String> {
    let started = std::time::Instant::now();
    if train(data, config, out, start, device, Log::Epochs, stop)? == Outcome::Interrupted {
        return Err("interrupted".into());
    }
    let (net, meta) =
        ferrite_model::file::load(&out.join(BEST), device).map_err(|e| e.to_string())?;
    let (_, confusion) = validate(&net, test, data.classes.len(), &meta.normalization, device);
    Ok(Scores {
        accuracy: confusion.accuracy(),
        macro_f1: confusion.macro_f1(),
        confusion,
        epoch: meta.epochs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}
