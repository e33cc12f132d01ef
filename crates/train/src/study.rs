//! The unit of cross-validation and learning curves: train on one set, select the epoch on
//! a second, score the selected model once on a held-out test set; and the step budget that
//! keeps runs on a few dozen images from stopping undertrained.

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

/// How many copies of a small training set make `epochs` epochs over it take at least
/// `min_steps` optimiser steps. Runs on a few hundred faces need the steps (on FER2013, 100
/// faces per class from scratch scored 31 % after 300 steps and 42 % after 1,000); copying
/// within an epoch rather than adding epochs keeps validation to once per `epochs`-th of the
/// run (70 faces are two batches: validating after each of 500 two-batch epochs would cost
/// more than the training).
pub fn copies_for_steps(
    images: usize,
    batch_size: usize,
    epochs: usize,
    min_steps: usize,
) -> usize {
    let per_epoch = min_steps.div_ceil(epochs.max(1));
    // The fewest copies whose images spill into batch number `per_epoch`.
    ((per_epoch.saturating_sub(1) * batch_size + 1).div_ceil(images.max(1))).max(1)
}

/// `copies` copies of the samples; the augmentation differs between the copies, as it is
/// drawn per position.
pub fn repeated(samples: &Samples, copies: usize, classes: usize) -> Samples {
    let indices: Vec<usize> = (0..copies).flat_map(|_| 0..samples.len()).collect();
    samples.subset(&indices, classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sets_are_copied_until_epochs_reach_the_step_budget() {
        // 10 faces x 7 classes: two batches; 9 copies, 10 batches x 30 epochs = 300 steps.
        assert_eq!(copies_for_steps(70, 64, 30, 300), 9);
        // 250 x 7 faces: 28 batches an epoch; 30 epochs pass 300 steps as they are.
        assert_eq!(copies_for_steps(1750, 64, 30, 300), 1);
        for (images, epochs, steps) in [(5, 1, 1), (640, 3, 40), (700, 30, 1000), (33, 7, 301)] {
            let r = copies_for_steps(images, 64, epochs, steps);
            assert!(
                epochs * (images * r).div_ceil(64) >= steps,
                "{images} {epochs} {steps}"
            );
            // One copy fewer would not have been enough.
            assert!(r == 1 || epochs * (images * (r - 1)).div_ceil(64) < steps);
        }
    }

    #[test]
    fn copies_repeat_every_sample_in_order() {
        let mut s = Samples::default();
        for i in 0..3u8 {
            s.push(
                &[i; ferrite_data::face::PIXELS],
                i as u32,
                ferrite_data::Origin::Row(i as usize),
            );
        }
        let r = repeated(&s, 2, 3);
        let labels: Vec<u32> = (0..r.len()).map(|i| r.label(i)).collect();
        assert_eq!(labels, [0, 1, 2, 0, 1, 2]);
    }
}
