//! The training loop. Reads top to bottom: set up (or resume), then for each epoch train
//! on shuffled augmented batches, validate, log, keep the best model and checkpoint.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use ferrite_data::Samples;
use ferrite_data::augment::{Normalization, sample_seed};
use ferrite_data::face::SIDE;
use ferrite_data::loader::{Batch, Loader, LoaderConfig};
use ferrite_data::mix::{MixConfig, mix_batch};
use ferrite_model::{ArchConfig, ModelMeta, Network};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::average::{Average, measure_norms};
use crate::checkpoint::{self, RunState};
use crate::config::{OptimizerKind, TrainConfig};
use crate::metrics::Confusion;
use crate::sam;
use crate::schedule::Schedule;
use ferrite_model::predict::{Tta, argmax, predict_samples};

/// What a run trains and selects on.
#[derive(Clone)]
pub struct TrainData {
    pub dataset: String,
    pub classes: Vec<String>,
    pub train: Arc<Samples>,
    pub val: Arc<Samples>,
    /// Name of the validation split (e.g. "PublicTest").
    pub val_name: String,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub val_macro_f1: f64,
    pub lr: f64,
    pub train_images_per_second: f64,
    pub seconds: f64,
}

/// Where a run's network comes from.
// Made once per run; boxing the network it carries would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Start {
    /// A new network of the configured architecture.
    Scratch,
    /// A trained network (fine-tuning), built as the given architecture.
    From(ArchConfig, Network),
    /// The run in the output folder, from its last checkpoint.
    Resume,
}

/// What a run prints to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// A progress bar on a terminal, ten lines per epoch otherwise, and a line per epoch.
    Batches,
    /// A line per epoch (runs inside `cv` and `curve`).
    Epochs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped by the user; `last.ckpt` holds the position.
    Interrupted,
}

pub const CHECKPOINT: &str = "last.ckpt";
pub const BEST: &str = "best.safetensors";
pub const METRICS: &str = "metrics.jsonl";
pub const CONFIG: &str = "config.json";
pub const CURVES: &str = "curves.png";
pub const AVERAGE: &str = "average.safetensors";

/// Trains into `out`. With [`Start::Resume`], continues the run whose `last.ckpt` is in
/// `out` (its saved configuration wins over `config`, except for the number of epochs and,
/// until averaging has begun, the epochs it averages).
///
/// `stop` is asked after every optimiser step (with the number of steps taken); when it
/// says yes, the run saves its exact position and returns [`Outcome::Interrupted`].
pub fn train(
    data: &TrainData,
    config: TrainConfig,
    out: &Path,
    start: Start,
    device: &Device,
    log: Log,
    stop: &dyn Fn(usize) -> bool,
) -> Result<Outcome, String> {
    let device = device.clone().autodiff();
    std::fs::create_dir_all(out).map_err(|e| format!("{}: cannot create: {e}", out.display()))?;
    let leftovers = ferrite_data::atomic::remove_leftovers(out);
    if leftovers > 0 {
        eprintln!(
            "removed {leftovers} half-written temporary file(s) of an interrupted write in {}",
            out.display()
        );
    }
    let ckpt_path = out.join(CHECKPOINT);

    let batches_per_epoch = data.train.len().div_ceil(config.batch_size);
    // Set before `start` is taken apart; a resumed run scored its start when it began.
    let fine_tuning = matches!(start, Start::From(..));
    let (config, arch, mut state, net, mut optim, mut average) = if let Start::Resume = start {
        same_data(out, data)?;
        let c = checkpoint::load(&ckpt_path, &device, new_optimizer(&config))?;
        let mut saved = c.config;
        let changed =
            saved.epochs != config.epochs || saved.average_epochs != config.average_epochs;
        if changed && let Some(a) = &c.average {
            return Err(format!(
                "{} has averaged the weights of {} epochs already; it cannot change its length or how many epochs it averages",
                out.display(),
                a.count
            ));
        }
        if saved.epochs != config.epochs {
            // Extending a run: stretch the schedule over the new length.
            saved.epochs = config.epochs;
        }
        // Averaging only reads the weights, so it can be asked for before it begins.
        saved.average_epochs = config.average_epochs;
        let mut state = c.state;
        state.schedule.total_steps = saved.epochs * batches_per_epoch;
        eprintln!(
            "resuming {} at epoch {} (step {})",
            out.display(),
            state.epochs_done + 1,
            state.step
        );
        (saved, c.arch, state, c.net, c.optimizer, c.average)
    } else {
        if ckpt_path.exists() {
            return Err(format!(
                "{} already holds a run; use --resume {0} to continue it, or another --out",
                out.display()
            ));
        }
        device.seed(config.seed);
        let (arch, net) = match start {
            Start::From(arch, net) => (arch, net),
            _ => {
                let mut arch = ArchConfig::new(config.arch, data.classes.len());
                if let Some(p) = config.dropout {
                    arch.dropout = p;
                }
                let net = arch.init(&device);
                (arch, net)
            }
        };
        let total = config.epochs * batches_per_epoch;
        let warmup = (config.warmup_epochs * batches_per_epoch as f64) as usize;
        let schedule = Schedule::new(config.schedule, config.lr, total, warmup, config.patience);
        let state = RunState {
            epochs_done: 0,
            step: 0,
            schedule,
            best_val_accuracy: -1.0,
            best_epoch: 0,
            partial: None,
        };
        let optim = new_optimizer(&config);
        (config, arch, state, net, optim, None)
    };
    // Freezing is not saved with the weights: set it on every start.
    let mut net = if config.freeze > 0 {
        net.freeze(config.freeze)?
    } else {
        net
    };
    write_config(out, &config, &arch, data)?;
    let mut history = read_history(out, state.epochs_done)?;

    let norm = Normalization::default();
    let class_weights = config
        .class_weights
        .then(|| inverse_frequency(&data.train, data.classes.len()));
    let eval_device = device.clone().without_autodiff();
    let score = |net: &Network| validate(net, &data.val, data.classes.len(), &norm, &eval_device);
    if fine_tuning {
        // The model we start from is a candidate too: on a few dozen images, every epoch of
        // fine-tuning can score below it on validation, and then it is the best answer.
        let valid = net.valid();
        let (val_loss, confusion) = score(&valid);
        eprintln!(
            "epoch   0 (the starting model)  {} loss {val_loss:.4} acc {:.4} macro-F1 {:.4}",
            data.val_name,
            confusion.accuracy(),
            confusion.macro_f1()
        );
        state.best_val_accuracy = confusion.accuracy();
        save_best(out, &valid, &arch, data, norm, confusion.accuracy(), 0)?;
    }
    let show_bar = log == Log::Batches && std::io::stderr().is_terminal();
    let batch_lines = log == Log::Batches && !show_bar;

    for epoch in state.epochs_done..config.epochs {
        let loader = training_batches(data, &config, norm, epoch);
        let loader_batches = loader.batches();
        let mut run = state.partial.take().unwrap_or_default();
        let bar = progress_bar(show_bar, loader.batches() as u64, epoch, config.epochs);
        bar.set_position(run.batches as u64);
        let started = Instant::now();
        let seconds_before = run.seconds;
        let skip = run.batches;
        for batch in loader.skip(skip) {
            // Dropout draws from the device RNG: seed it per step, so that a run resumed
            // mid-epoch draws exactly what the uninterrupted run would have.
            device.seed(sample_seed(config.seed, u64::MAX, state.step as u64));
            let batch = match &config.mix {
                Some(mix) => mixed(batch, mix, data.classes.len(), config.seed, state.step),
                None => batch,
            };
            let lr = state.schedule.lr(state.step);
            let (loss, correct) = step(
                &mut net,
                &mut optim,
                &batch,
                lr,
                data.classes.len(),
                &config,
                class_weights.as_deref(),
                &device,
            );
            state.step += 1;
            run.batches += 1;
            run.seen += batch.len;
            run.correct += correct;
            run.loss_sum += loss * batch.len as f64;
            run.seconds = seconds_before + started.elapsed().as_secs_f64();
            bar.set_message(format!(
                "loss {:.3} acc {:.3} lr {lr:.2e}",
                run.loss_sum / run.seen as f64,
                run.correct as f64 / run.seen as f64
            ));
            bar.inc(1);
            if batch_lines && run.batches % (loader_batches / 10).max(1) == 0 {
                eprintln!(
                    "epoch {}/{} batch {}/{}  loss {:.4} acc {:.4}  lr {lr:.2e}  {:.0} img/s",
                    epoch + 1,
                    config.epochs,
                    run.batches,
                    loader_batches,
                    run.loss_sum / run.seen as f64,
                    run.correct as f64 / run.seen as f64,
                    run.seen as f64 / run.seconds.max(1e-9)
                );
            }
            if stop(state.step) {
                bar.abandon();
                net.sync_running_stats();
                state.partial = Some(run);
                state.epochs_done = epoch;
                checkpoint::save(
                    &ckpt_path,
                    &config,
                    &arch,
                    &state,
                    &net,
                    &optim,
                    average.as_ref(),
                )?;
                eprintln!(
                    "interrupted: saved {} (resume with --resume {})",
                    ckpt_path.display(),
                    out.display()
                );
                return Ok(Outcome::Interrupted);
            }
        }
        bar.finish_and_clear();
        net.sync_running_stats();

        let valid = net.valid();
        let (val_loss, confusion) = score(&valid);
        state.schedule.end_epoch(val_loss);
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss: run.loss_sum / run.seen.max(1) as f64,
            train_accuracy: run.correct as f64 / run.seen.max(1) as f64,
            val_loss,
            val_accuracy: confusion.accuracy(),
            val_macro_f1: confusion.macro_f1(),
            lr: state.schedule.lr(state.step.saturating_sub(1)),
            train_images_per_second: run.seen as f64 / run.seconds.max(1e-9),
            seconds: run.seconds,
        };
        eprintln!(
            "epoch {:>3}/{}  train loss {:.4} acc {:.4}  {} loss {:.4} acc {:.4} macro-F1 {:.4}  lr {:.2e}  {:.0} img/s  {:.0} s",
            m.epoch,
            config.epochs,
            m.train_loss,
            m.train_accuracy,
            data.val_name,
            m.val_loss,
            m.val_accuracy,
            m.val_macro_f1,
            m.lr,
            m.train_images_per_second,
            m.seconds
        );
        state.epochs_done = epoch + 1;
        if m.val_accuracy > state.best_val_accuracy {
            state.best_val_accuracy = m.val_accuracy;
            state.best_epoch = epoch + 1;
            save_best(out, &valid, &arch, data, norm, m.val_accuracy, epoch + 1)?;
        }
        history.push(m);
        write_history(out, &history)?;
        if epoch + config.average_epochs >= config.epochs {
            match &mut average {
                Some(a) => a.add(&net)?,
                None => average = Some(Average::new(&net)),
            }
        }
        checkpoint::save(
            &ckpt_path,
            &config,
            &arch,
            &state,
            &net,
            &optim,
            average.as_ref(),
        )?;
        if let Err(e) = crate::plot::curves(&history, &data.val_name, &out.join(CURVES)) {
            eprintln!("warning: cannot draw {}: {e}", CURVES);
        }
        if let Some(patience) = config.early_stop
            && state.epochs_done - state.best_epoch >= patience
        {
            eprintln!(
                "early stop: no better {} accuracy for {patience} epochs",
                data.val_name
            );
            break;
        }
    }
    eprintln!(
        "done: best {} accuracy {:.4} at epoch {}; model in {}",
        data.val_name,
        state.best_val_accuracy,
        state.best_epoch,
        out.join(BEST).display()
    );
    if state.best_epoch == 0 {
        eprintln!(
            "no epoch of fine-tuning beat the starting model on {}, so {BEST} is the starting model",
            data.val_name
        );
    }
    if let Some(a) = average {
        let started = Instant::now();
        // Without gradients (batch norm still in training mode): otherwise the autodiff
        // device records every operation of the pass for a backward pass that never comes,
        // an epoch's worth of activations (24 GB on FER2013).
        let net = a.net.no_grad();
        // An order and augmentation no training epoch used.
        measure_norms(
            &net,
            training_batches(data, &config, norm, config.epochs),
            &device,
        );
        let valid = net.valid();
        let (val_loss, confusion) = score(&valid);
        let mut meta = model_meta(&arch, data, norm, confusion.accuracy(), state.epochs_done);
        meta.averaged_epochs = a.count;
        let path = out.join(AVERAGE);
        ferrite_model::file::save(&path, &valid, &meta).map_err(|e| e.to_string())?;
        eprintln!(
            "weight average of the last {} epochs (batch norm measured again in {:.0} s): {} loss {val_loss:.4} acc {:.4} macro-F1 {:.4}; model in {}",
            a.count,
            started.elapsed().as_secs_f64(),
            data.val_name,
            confusion.accuracy(),
            confusion.macro_f1(),
            path.display()
        );
    }
    Ok(Outcome::Finished)
}

/// An epoch's batches: the training images shuffled and augmented, in the order and with
/// the augmentation the run's seed gives that epoch.
fn training_batches(
    data: &TrainData,
    config: &TrainConfig,
    norm: Normalization,
    epoch: usize,
) -> Loader {
    Loader::new(
        data.train.clone(),
        data.classes.len(),
        LoaderConfig {
            batch_size: config.batch_size,
            shuffle: true,
            augment: Some(config.augment),
            normalization: norm,
            seed: config.seed,
            epoch: epoch as u64,
            workers: 1,
            prefetch: 4,
            drop_last: false,
        },
    )
}

/// Writes the model selected so far, with what it was selected on.
fn save_best(
    out: &Path,
    net: &Network,
    arch: &ArchConfig,
    data: &TrainData,
    norm: Normalization,
    val_accuracy: f64,
    epoch: usize,
) -> Result<(), String> {
    let meta = model_meta(arch, data, norm, val_accuracy, epoch);
    ferrite_model::file::save(&out.join(BEST), net, &meta).map_err(|e| e.to_string())
}

/// A trained model's description: what it is, and what it was selected on.
fn model_meta(
    arch: &ArchConfig,
    data: &TrainData,
    norm: Normalization,
    val_accuracy: f64,
    epochs: usize,
) -> ModelMeta {
    let mut meta = ModelMeta::new(arch.clone(), data.classes.clone(), &data.dataset);
    meta.normalization = norm;
    meta.val_split = Some(data.val_name.clone());
    meta.val_accuracy = Some(val_accuracy);
    meta.epochs = epochs;
    meta
}

fn new_optimizer(config: &TrainConfig) -> ModuleOptimizer {
    match config.optimizer {
        OptimizerKind::AdamW => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(config.weight_decay as f32)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum(Some(MomentumConfig {
                momentum: config.momentum,
                dampening: 0.0,
                nesterov: true,
            }))
            .with_weight_decay((config.weight_decay > 0.0).then_some(WeightDecayConfig {
                penalty: config.weight_decay as f32,
            }))
            .init(),
    }
}

/// One optimiser step on one batch (with `--sam`, at the gradient taken at the worst
/// nearby weights). Returns the batch's mean loss and its correct count.
// The step's inputs are all different things; a struct for them would only rename them.
#[allow(clippy::too_many_arguments)]
fn step(
    net: &mut Network,
    optim: &mut ModuleOptimizer,
    batch: &Batch,
    lr: f64,
    classes: usize,
    config: &TrainConfig,
    class_weights: Option<&[f32]>,
    device: &Device,
) -> (f64, usize) {
    let n = batch.len;
    let x = Tensor::<4>::from_data(
        TensorData::new(batch.images.clone(), [n, 1, SIDE, SIDE]),
        device,
    );
    let targets = soft_targets(batch, classes, config.label_smoothing);
    let targets = Tensor::<2>::from_data(TensorData::new(targets, [n, classes]), device);
    let weights = class_weights.map(|w| {
        let weights: Vec<f32> = batch.labels.iter().map(|&l| w[l as usize]).collect();
        Tensor::<1>::from_data(TensorData::new(weights, [n]), device)
    });
    let loss = |logits: Tensor<2>| {
        let per_sample: Tensor<1> = (log_softmax(logits, 1) * targets.clone())
            .sum_dim(1)
            .reshape([n])
            .neg();
        match &weights {
            Some(w) => (per_sample * w.clone()).sum() / w.clone().sum(),
            None => per_sample.mean(),
        }
    };
    let logits = net.forward(x.clone());
    let predicted: Vec<i64> = logits
        .clone()
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("argmax indices");
    let correct = predicted
        .iter()
        .zip(&batch.labels)
        .filter(|(p, l)| **p == **l as i64)
        .count();
    let batch_loss = loss(logits);
    let loss_value = batch_loss.clone().into_scalar::<f32>() as f64;
    let mut grads = GradientsParams::from_grads(batch_loss.backward(), net);
    if let Some(rho) = config.sam {
        // The same faces, dropout drawn anew. Batch norm's running statistics take this
        // pass too, measured at weights rho away: a negligible difference at rho 0.05.
        let ascended = sam::ascended(net, &grads, rho);
        grads = GradientsParams::from_grads(loss(ascended.forward(x)).backward(), &ascended);
    }
    *net = optim.step(lr, net.clone(), grads);
    (loss_value, correct)
}

/// The batch with its faces mixed (mixup or CutMix), drawn from the run's seed and the
/// step; its targets become the mixed ones (smoothed later like any target), its labels
/// those of the larger share, which the training accuracy and the class weights read.
fn mixed(mut batch: Batch, mix: &MixConfig, classes: usize, seed: u64, step: usize) -> Batch {
    let mut targets = soft_targets(&batch, classes, 0.0);
    let seed = sample_seed(seed, u64::MAX - 1, step as u64);
    if mix_batch(
        mix,
        &mut batch.images,
        &mut targets,
        &mut batch.labels,
        classes,
        seed,
    )
    .is_some()
    {
        batch.soft = Some(targets);
    }
    batch
}

/// Training targets: the one-hot label (or the vote distribution), smoothed towards uniform.
pub fn soft_targets(batch: &Batch, classes: usize, smoothing: f64) -> Vec<f32> {
    let eps = smoothing as f32;
    let mut t = vec![eps / classes as f32; batch.len * classes];
    for i in 0..batch.len {
        let row = &mut t[i * classes..(i + 1) * classes];
        match &batch.soft {
            Some(soft) => {
                for (c, v) in row.iter_mut().enumerate() {
                    *v += (1.0 - eps) * soft[i * classes + c];
                }
            }
            None => row[batch.labels[i] as usize] += 1.0 - eps,
        }
    }
    t
}

/// Class weights `n / (classes * count)`, so that every class counts equally in the loss.
fn inverse_frequency(samples: &Samples, classes: usize) -> Vec<f32> {
    let counts = samples.class_counts(classes);
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                samples.len() as f32 / (classes as f32 * c as f32)
            }
        })
        .collect()
}

/// Validation loss (plain cross-entropy) and confusion matrix.
pub fn validate(
    net: &Network,
    val: &Samples,
    classes: usize,
    norm: &Normalization,
    device: &Device,
) -> (f64, Confusion) {
    let probs = predict_samples(net, val, norm, Tta::None, 256, device, |_| {});
    let mut confusion = Confusion::new(classes);
    let mut loss = 0.0;
    for (i, p) in probs.iter().enumerate() {
        let truth = val.label(i) as usize;
        confusion.add(truth, argmax(p));
        loss -= (p[truth].max(1e-12) as f64).ln();
    }
    (loss / probs.len().max(1) as f64, confusion)
}

fn progress_bar(visible: bool, len: u64, epoch: usize, epochs: usize) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
    bar
}

/// A resumed run must see the data it trained on: the same dataset, label mode, classes and
/// number of training images (a FERPlus run resumed without `--labels distribution` would
/// otherwise go on with other targets, silently).
fn same_data(out: &Path, data: &TrainData) -> Result<(), String> {
    let path = out.join(CONFIG);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(()); // a checkpoint without its config: nothing to compare with
    };
    let mut saved: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    // A folder's name holds its path, which may be spelt another way on resume.
    let kind = |name: &str| {
        if name.starts_with("folder ") {
            "a folder of images".to_string()
        } else {
            name.to_string()
        }
    };
    saved["dataset"] = kind(saved["dataset"].as_str().unwrap_or_default()).into();
    let mut given = trained_on(data);
    given["dataset"] = kind(&data.dataset).into();
    // The dataset first: when it differs, so do the rest, and it says the most.
    for key in ["dataset", "classes", "train_images"] {
        let given = &given[key];
        if saved[key] != *given {
            return Err(format!(
                "{} trained on {} = {}, but the data given now has {}: resume it with the dataset options it was started with",
                out.display(),
                key,
                saved[key],
                given
            ));
        }
    }
    Ok(())
}

/// The data a run trains on, as config.json records it (a resumed run must match it).
fn trained_on(data: &TrainData) -> serde_json::Value {
    serde_json::json!({
        "dataset": data.dataset,
        "classes": data.classes,
        "train_images": data.train.len(),
    })
}

fn write_config(
    out: &Path,
    config: &TrainConfig,
    arch: &ArchConfig,
    data: &TrainData,
) -> Result<(), String> {
    let mut json = trained_on(data);
    json["train"] = serde_json::json!(config);
    json["arch"] = serde_json::json!(arch);
    json["val_split"] = data.val_name.clone().into();
    json["val_images"] = data.val.len().into();
    let text = serde_json::to_string_pretty(&json).expect("config serialises");
    ferrite_data::atomic::write_atomic(&out.join(CONFIG), text.as_bytes())
        .map_err(|e| format!("{}: {e}", out.join(CONFIG).display()))
}

/// The metrics of the epochs a checkpoint covers (lines past it, from an epoch that did
/// not finish its checkpoint, are dropped: that epoch runs again).
fn read_history(out: &Path, epochs_done: usize) -> Result<Vec<EpochMetrics>, String> {
    let path = out.join(METRICS);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .take(epochs_done)
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{}: line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

fn write_history(out: &Path, history: &[EpochMetrics]) -> Result<(), String> {
    let mut text = Vec::new();
    for m in history {
        serde_json::to_writer(&mut text, m).expect("metrics serialise");
        text.write_all(b"\n").expect("write to memory");
    }
    let path: PathBuf = out.join(METRICS);
    ferrite_data::atomic::write_atomic(&path, &text).map_err(|e| format!("{}: {e}", path.display()))
}
