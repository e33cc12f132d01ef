//! Batches for training and evaluation, prepared ahead on worker threads.
//!
//! Worker `w` of `W` prepares batches `w, w + W, w + 2W, ...` into its own small bounded
//! channel and the consumer reads the channels round-robin, so batches arrive in order
//! (the run is reproducible) while preparation overlaps with training.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::augment::{AugmentConfig, Normalization, augment_into, sample_seed};
use crate::dataset::Samples;
use crate::face::PIXELS;

/// One batch: `len` images as normalised f32 planes back to back (NCHW with C = 1).
#[derive(Debug, Clone)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    /// Soft targets, `len * classes`, when the samples carry them.
    pub soft: Option<Vec<f32>>,
    pub len: usize,
}

/// How to go through a set of samples once.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Shuffle with an order drawn from (seed, epoch).
    pub shuffle: bool,
    /// `None` for evaluation.
    pub augment: Option<AugmentConfig>,
    pub normalization: Normalization,
    pub seed: u64,
    pub epoch: u64,
    pub workers: usize,
    /// Batches each worker may prepare ahead.
    pub prefetch: usize,
    pub drop_last: bool,
}

impl LoaderConfig {
    /// In-order, unaugmented batches (evaluation).
    pub fn eval(batch_size: usize, normalization: Normalization) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: false,
            augment: None,
            normalization,
            seed: 0,
            epoch: 0,
            workers: 1,
            prefetch: 2,
            drop_last: false,
        }
    }
}

/// The order in which an epoch visits the samples.
pub fn epoch_order(len: usize, shuffle: bool, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if shuffle {
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(sample_seed(
            seed,
            epoch,
            u64::MAX,
        )));
    }
    order
}

/// Prepares one batch from the samples at `indices`.
pub fn make_batch(
    samples: &Samples,
    classes: usize,
    indices: &[usize],
    cfg: &LoaderConfig,
) -> Batch {
    let mut images = vec![0f32; indices.len() * PIXELS];
    let mut labels = Vec::with_capacity(indices.len());
    let mut soft = samples
        .has_soft_targets()
        .then(|| Vec::with_capacity(indices.len() * classes));
    for (k, &i) in indices.iter().enumerate() {
        let out = &mut images[k * PIXELS..(k + 1) * PIXELS];
        match &cfg.augment {
            Some(aug) => augment_into(
                samples.image(i),
                aug,
                &cfg.normalization,
                sample_seed(cfg.seed, cfg.epoch, i as u64),
                out,
            ),
            None => cfg.normalization.apply(samples.image(i), out),
        }
        labels.push(samples.label(i));
        if let (Some(s), Some(t)) = (soft.as_mut(), samples.soft_target(i, classes)) {
            s.extend_from_slice(t);
        }
    }
    Batch {
        images,
        labels,
        soft,
        len: indices.len(),
    }
}

/// An iterator over the batches of one epoch.
pub struct Loader {
    receivers: Vec<Receiver<Batch>>,
    workers: Vec<JoinHandle<()>>,
    next: usize,
    batches: usize,
}

impl Loader {
    pub fn new(samples: Arc<Samples>, classes: usize, cfg: LoaderConfig) -> Loader {
        assert!(cfg.batch_size > 0, "batch size must be positive");
        let order = epoch_order(samples.len(), cfg.shuffle, cfg.seed, cfg.epoch);
        let mut chunks: Vec<Vec<usize>> =
            order.chunks(cfg.batch_size).map(|c| c.to_vec()).collect();
        if cfg.drop_last
            && chunks.last().is_some_and(|c| c.len() < cfg.batch_size)
            && chunks.len() > 1
        {
            chunks.pop();
        }
        let batches = chunks.len();
        let chunks = Arc::new(chunks);
        let n_workers = cfg.workers.clamp(1, batches.max(1));
        let cfg = Arc::new(cfg);
        let mut receivers = Vec::with_capacity(n_workers);
        let mut workers = Vec::with_capacity(n_workers);
        for w in 0..n_workers {
            let (tx, rx) = sync_channel(cfg.prefetch.max(1));
            let (samples, chunks, cfg) = (samples.clone(), chunks.clone(), cfg.clone());
            workers.push(std::thread::spawn(move || {
                for b in (w..chunks.len()).step_by(n_workers) {
                    // A closed channel means the consumer stopped early: nothing left to do.
                    if tx
                        .send(make_batch(&samples, classes, &chunks[b], &cfg))
                        .is_err()
                    {
                        return;
                    }
                }
            }));
            receivers.push(rx);
        }
        Loader {
            receivers,
            workers,
            next: 0,
            batches,
        }
    }

    /// Number of batches in this epoch.
    pub fn batches(&self) -> usize {
        self.batches
    }
}

impl Iterator for Loader {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.batches {
            return None;
        }
        let rx = &self.receivers[self.next % self.receivers.len()];
        self.next += 1;
        Some(
            rx.recv()
                .expect("a loader worker stopped before its last batch (it panicked)"),
        )
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.receivers.clear(); // unblocks workers waiting to send
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Origin;

    fn samples(n: usize) -> Arc<Samples> {
        let mut s = Samples::default();
        for i in 0..n {
            s.push(&[(i % 256) as u8; PIXELS], (i % 3) as u32, Origin::Row(i));
        }
        Arc::new(s)
    }

    fn collect(cfg: LoaderConfig, n: usize) -> Vec<Batch> {
        Loader::new(samples(n), 3, cfg).collect()
    }

    fn train_cfg(workers: usize) -> LoaderConfig {
        LoaderConfig {
            batch_size: 8,
            shuffle: true,
            augment: Some(AugmentConfig::default()),
            normalization: Normalization::default(),
            seed: 42,
            epoch: 3,
            workers,
            prefetch: 2,
            drop_last: false,
        }
    }

    #[test]
    fn every_sample_once_in_order_when_not_shuffled() {
        let batches = collect(LoaderConfig::eval(8, Normalization::default()), 21);
        assert_eq!(
            batches.iter().map(|b| b.len).collect::<Vec<_>>(),
            vec![8, 8, 5]
        );
        let labels: Vec<u32> = batches.iter().flat_map(|b| b.labels.clone()).collect();
        assert_eq!(labels, (0..21).map(|i| (i % 3) as u32).collect::<Vec<_>>());
    }

    #[test]
    fn batches_do_not_depend_on_the_number_of_workers() {
        let one = collect(train_cfg(1), 50);
        let three = collect(train_cfg(3), 50);
        assert_eq!(one.len(), three.len());
        for (a, b) in one.iter().zip(&three) {
            assert_eq!(a.labels, b.labels);
            assert_eq!(a.images, b.images);
        }
    }

    #[test]
    fn shuffle_is_a_permutation_that_changes_with_the_epoch() {
        let a = epoch_order(100, true, 1, 0);
        let b = epoch_order(100, true, 1, 1);
        assert_ne!(a, b);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(100, true, 1, 0));
    }

    #[test]
    fn dropping_a_loader_early_does_not_hang() {
        let mut loader = Loader::new(samples(200), 3, train_cfg(2));
        assert!(loader.next().is_some());
        drop(loader);
    }
}
