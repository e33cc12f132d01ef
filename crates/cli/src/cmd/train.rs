//! `ferrite train`: train a network on a dataset.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ferrite_data::augment::{AugmentConfig, Fill};
use ferrite_data::ferplus::LabelMode;
use ferrite_data::mix::{MixConfig, MixKind};
use ferrite_data::{DataSource, Dataset, Samples, SplitRole};
use ferrite_model::ArchKind;
use ferrite_model::predict::Tta;
use ferrite_train::config::{OptimizerKind, ScheduleKind, TrainConfig};
use ferrite_train::{Log, Outcome, Start, TrainData};

use crate::dataset_args::DatasetArgs;

/// Train a network (ferrite, mini-xception, vgg13, vgg13-bn) on a dataset.
///
/// Each epoch trains on the training split, scores the validation split
/// (PublicTest, FERPlus valid, or a folder's `val`; a folder without one gets a seeded
/// stratified 10 % hold-out), and writes to the run folder: config.json, metrics.jsonl,
/// curves.png, last.ckpt (to resume) and best.safetensors (the best validation model).
///
/// Example: ferrite train --fer2013 fer2013.csv.gz --arch ferrite --epochs 60 --out runs/fer2013
///
/// Continue a stopped run: the same command with `--resume runs/fer2013`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// Network to train.
    #[arg(long, default_value = "ferrite", value_parser = parse_arch)]
    arch: ArchKind,
    /// Run folder (created).
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Distil: mix this model's probabilities (several, comma-separated: their average) on
    /// each training image, with its mirror, into the image's target. The teachers must be
    /// trained on the training split only and name the dataset's classes. With --resume,
    /// the run's own teacher is used.
    #[arg(help_heading = TRAINING, long, value_name = "FILE[,FILE...]", value_delimiter = ',')]
    teacher: Vec<PathBuf>,
    /// The teacher's share of each target; the label keeps the rest.
    #[arg(help_heading = TRAINING, long, value_name = "W", default_value_t = 0.5, requires = "teacher")]
    teacher_weight: f64,
    #[command(flatten)]
    averaging: Averaging,
    #[command(flatten)]
    options: TrainOptions,
    #[command(flatten)]
    run: RunOptions,
}

const TRAINING: &str = "Training options";

/// Weight averaging, for the commands that train one model into a run folder (train, finetune).
#[derive(Debug, Clone, Args)]
pub struct Averaging {
    /// Weight averaging: also keep the mean of the weights at the end of each of the last N
    /// epochs, with batch-norm statistics measured again on the training images, saved as
    /// average.safetensors and scored on validation at the end (compare it with
    /// best.safetensors there). With --resume: may be set until the averaging begins.
    #[arg(help_heading = TRAINING, long, value_name = "N")]
    average: Option<usize>,
}

impl Averaging {
    /// Sets how many epochs `config` averages when `--average` is given (else it keeps its
    /// own: none for a new run, the run's own on resume).
    pub fn apply(&self, config: &mut TrainConfig) -> Result<()> {
        if let Some(n) = self.average {
            config.average_epochs = n;
        }
        if config.average_epochs > config.epochs {
            bail!(
                "--average {} is more than the run's {} epochs",
                config.average_epochs,
                config.epochs
            );
        }
        Ok(())
    }
}

/// The configuration saved in a run folder, for `--resume`: its seed, data limit and
/// teacher, so that it reads the same data, and its length unless `--epochs` is given (the
/// default of a new run is not a request to change it).
pub fn saved_config(dir: &Path, options: &TrainOptions) -> Result<TrainConfig> {
    let path = dir.join(ferrite_train::trainer::CONFIG);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str::<serde_json::Value>(&text)
        .and_then(|doc| serde_json::from_value::<TrainConfig>(doc["train"].clone()))
        .with_context(|| format!("{}: not a run configuration", path.display()))
        .map(|mut saved| {
            saved.epochs = options.epochs.unwrap_or(saved.epochs);
            saved
        })
}

/// How a network is trained: shared by train, finetune, cv and curve, whose defaults differ
/// (see [`Defaults`]).
#[derive(Debug, Clone, Args)]
pub struct TrainOptions {
    /// Epochs to train (with --resume: the run's new total) [default: train 60, finetune 30].
    #[arg(help_heading = TRAINING, long)]
    pub epochs: Option<usize>,
    /// Images per optimiser step.
    #[arg(help_heading = TRAINING, long, default_value_t = 64)]
    batch_size: usize,
    /// Optimiser [default: sgd; adamw for networks trained from scratch by curve and cv].
    #[arg(help_heading = TRAINING, long, value_enum)]
    optimizer: Option<Optimizer>,
    /// Peak learning rate [default: sgd 0.05 (finetune 0.001), adamw 0.002 (finetune 0.0005)].
    #[arg(help_heading = TRAINING, long)]
    lr: Option<f64>,
    /// L2 weight decay (decoupled for AdamW).
    #[arg(help_heading = TRAINING, long, default_value_t = 5e-4)]
    weight_decay: f64,
    /// SGD momentum (Nesterov, no dampening).
    #[arg(help_heading = TRAINING, long, default_value_t = 0.9)]
    momentum: f64,
    /// Learning-rate schedule [default: train one-cycle, finetune cosine].
    #[arg(help_heading = TRAINING, long, value_enum)]
    schedule: Option<Schedule>,
    /// Warm-up epochs (cosine, plateau and constant schedules).
    #[arg(help_heading = TRAINING, long, default_value_t = 1.0)]
    warmup: f64,
    /// Plateau schedule: epochs without improvement before the rate is cut by 10.
    #[arg(help_heading = TRAINING, long, default_value_t = 5)]
    patience: usize,
    /// Stop when validation accuracy has not improved for N epochs [default: train never,
    /// finetune 8].
    #[arg(help_heading = TRAINING, long, value_name = "N")]
    early_stop: Option<usize>,
    /// Share of the target spread evenly over all classes.
    #[arg(help_heading = TRAINING, long, default_value_t = 0.1)]
    label_smoothing: f64,
    /// Weight classes by inverse frequency in the loss.
    #[arg(help_heading = TRAINING, long)]
    class_weights: bool,
    /// Dropout before the classifier [default: the architecture's own].
    #[arg(help_heading = TRAINING, long)]
    dropout: Option<f64>,
    /// Data augmentation: `standard` (the shipped models' recipe: 4-pixel pad-crop, flip,
    /// ±10° rotation, ±10 % zoom, ±20 % brightness/contrast, erasing), `framing` (for faces
    /// cropped by any tool and camera: ±30 % zoom, ±10 % shift, ±15° rotation, ±30 % light,
    /// edge fill, some faces blurred or JPEG-compressed) or `none`.
    #[arg(help_heading = TRAINING, long, value_enum, default_value = "standard")]
    augment: Augment,
    /// Turn off data augmentation (the same as `--augment none`).
    #[arg(help_heading = TRAINING, long, conflicts_with = "augment")]
    no_augment: bool,
    /// What the pixels a zoom-out, shift or turn uncovers show, in place of the augmentation's
    /// own (`standard`: black, `framing`: edge): `edge` (the nearest border pixel), `black`,
    /// `gray` (as cropping tools pad), or `mixed` (each face one of the three).
    #[arg(help_heading = TRAINING, long, value_enum, conflicts_with = "no_augment")]
    fill: Option<FillArg>,
    /// Mix the faces of each batch, their targets in the same shares: `mixup` blends two
    /// whole faces, `cutmix` pastes a rectangle of one face into another.
    #[arg(help_heading = TRAINING, long, value_enum)]
    mix: Option<MixArg>,
    /// Each face keeps a share drawn from Beta(ALPHA, ALPHA) [default: mixup 0.2, cutmix 1].
    #[arg(help_heading = TRAINING, long, value_name = "ALPHA", requires = "mix")]
    mix_alpha: Option<f32>,
    /// Share of the batches mixed [default: 0.5].
    #[arg(help_heading = TRAINING, long, value_name = "P", requires = "mix")]
    mix_prob: Option<f32>,
    /// Sharpness-aware minimisation: every step descends from the worst point within RHO
    /// of the weights (try 0.05), which favours flat minima; each step costs two.
    #[arg(help_heading = TRAINING, long, value_name = "RHO")]
    sam: Option<f64>,
    /// Seed of initialisation, data order, augmentation and dropout (a run is reproducible).
    #[arg(help_heading = TRAINING, long, default_value_t = 0)]
    pub seed: u64,
}

/// Where and on what a run computes.
#[derive(Debug, Clone, Args)]
pub struct RunOptions {
    /// CPU threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// cpu, or gpu[:N] in a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Train on N training images only (a seeded random subset), for quick experiments.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Validate on N validation images only (a seeded stratified subset), for quick runs.
    #[arg(long, value_name = "N")]
    pub val_limit: Option<usize>,
}

impl RunOptions {
    /// Applies --threads and returns the device.
    pub fn device(&self) -> Result<burn::tensor::Device> {
        if let Some(t) = self.threads {
            ferrite_model::device::set_threads(t).map_err(anyhow::Error::msg)?;
        }
        ferrite_model::device::parse(&self.device).map_err(anyhow::Error::msg)
    }
}

/// The defaults that differ between training from scratch and fine-tuning.
pub struct Defaults {
    pub optimizer: Optimizer,
    pub epochs: usize,
    /// Peak rates for SGD and AdamW.
    pub lr: (f64, f64),
    pub schedule: ScheduleKind,
    pub early_stop: Option<usize>,
}

pub const SCRATCH: Defaults = Defaults {
    optimizer: Optimizer::Sgd,
    epochs: 60,
    lr: (0.05, 0.002),
    schedule: ScheduleKind::OneCycle,
    early_stop: None,
};

/// From scratch on little data (curve, cv): SGD with a one-cycle peak of 0.05 never got
/// going on a few hundred images (`ferrite` on FER2013, 100 per class: training accuracy
/// near chance after 330 steps, and the best of 700 PublicTest faces 24.1 %, at the first
/// epoch), where AdamW reached 32.4 %.
pub const SMALL_SCRATCH: Defaults = Defaults {
    optimizer: Optimizer::Adamw,
    ..SCRATCH
};

/// A trained network needs smaller steps, and little data an early stop. SGD at 0.01 did
/// not get the built-in model clearly above its start on FER2013 PublicTest (700 faces:
/// 60.4 % before; at best 59.9 % with 50 faces per class, 60.9 % with 250), where 0.001
/// reached 61.9, 63.7 and 65.7 % with 10, 50 and 250 faces per class.
pub const FINETUNE: Defaults = Defaults {
    optimizer: Optimizer::Sgd,
    epochs: 30,
    lr: (0.001, 0.0005),
    schedule: ScheduleKind::Cosine,
    early_stop: Some(8),
};

impl TrainOptions {
    fn augment(&self) -> Result<AugmentConfig> {
        let mut augment = match (self.no_augment, self.augment) {
            (true, _) | (_, Augment::None) => AugmentConfig::none(),
            (_, Augment::Standard) => AugmentConfig::default(),
            (_, Augment::Framing) => AugmentConfig::framing(),
        };
        if let Some(fill) = self.fill {
            if augment == AugmentConfig::none() {
                bail!("--fill changes what augmentation uncovers; there is none to change");
            }
            augment.fill = match fill {
                FillArg::Edge => Fill::Edge,
                FillArg::Black => Fill::Black,
                FillArg::Gray => Fill::Gray,
                FillArg::Mixed => Fill::Mixed,
            };
        }
        Ok(augment)
    }

    fn mix(&self) -> Result<Option<MixConfig>> {
        let Some(kind) = self.mix else {
            return Ok(None);
        };
        let (kind, alpha) = match kind {
            MixArg::Mixup => (MixKind::Mixup, 0.2),
            MixArg::Cutmix => (MixKind::Cutmix, 1.0),
        };
        let mix = MixConfig {
            kind,
            alpha: self.mix_alpha.unwrap_or(alpha),
            prob: self.mix_prob.unwrap_or(0.5),
        };
        mix.check().map_err(anyhow::Error::msg)?;
        Ok(Some(mix))
    }

    pub fn config(&self, arch: ArchKind, run: &RunOptions, d: &Defaults) -> Result<TrainConfig> {
        let (optimizer, default_lr) = match self.optimizer.unwrap_or(d.optimizer) {
            Optimizer::Sgd => (OptimizerKind::Sgd, d.lr.0),
            Optimizer::Adamw => (OptimizerKind::AdamW, d.lr.1),
        };
        let config = TrainConfig {
            arch,
            epochs: self.epochs.unwrap_or(d.epochs),
            batch_size: self.batch_size,
            optimizer,
            lr: self.lr.unwrap_or(default_lr),
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            schedule: match self.schedule {
                Some(Schedule::Cosine) => ScheduleKind::Cosine,
                Some(Schedule::OneCycle) => ScheduleKind::OneCycle,
                Some(Schedule::Plateau) => ScheduleKind::Plateau,
                Some(Schedule::Constant) => ScheduleKind::Constant,
                None => d.schedule,
            },
            warmup_epochs: self.warmup,
            patience: self.patience,
            label_smoothing: self.label_smoothing,
            class_weights: self.class_weights,
            dropout: self.dropout,
            augment: self.augment()?,
            seed: self.seed,
            limit: run.limit,
            device: run.device.clone(),
            freeze: 0,
            early_stop: self.early_stop.or(d.early_stop).filter(|&n| n > 0),
            from: None,
            teacher: Vec::new(),
            teacher_weight: 0.0,
            average_epochs: 0,
            mix: self.mix()?,
            sam: self.sam,
        };
        if config.batch_size == 0 || config.epochs == 0 {
            bail!("--epochs and --batch-size must be at least 1");
        }
        if !(config.lr > 0.0 && config.lr.is_finite()) {
            bail!("--lr must be a positive number");
        }
        if config
            .sam
            .is_some_and(|rho| !(rho > 0.0 && rho.is_finite()))
        {
            bail!("--sam must be a positive radius, such as 0.05");
        }
        Ok(config)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Optimizer {
    /// SGD with Nesterov momentum (no dampening, as PyTorch).
    Sgd,
    /// Adam with decoupled weight decay (epsilon 1e-8, as PyTorch).
    Adamw,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Augment {
    Standard,
    Framing,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FillArg {
    Edge,
    Black,
    Gray,
    Mixed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MixArg {
    Mixup,
    Cutmix,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Schedule {
    /// Linear warm-up, then cosine decay to zero.
    Cosine,
    /// Up to the peak over the first 30 % of steps, then down to peak/10^4.
    OneCycle,
    /// Divide by 10 when validation loss stalls for --patience epochs.
    Plateau,
    /// The rate throughout, after the warm-up (with --average: SWA).
    Constant,
}

pub fn parse_arch(s: &str) -> Result<ArchKind, String> {
    s.parse()
}

static STOP: AtomicBool = AtomicBool::new(false);

pub fn run(args: TrainArgs) -> Result<i32> {
    let device = args.run.device()?;
    let out = args
        .resume
        .clone()
        .or(args.out.clone())
        .expect("clap requires --out or --resume");
    if !(0.0..=1.0).contains(&args.teacher_weight) {
        bail!("--teacher-weight must be between 0 and 1");
    }
    let mut config = match &args.resume {
        // The run's own teacher among the rest: its targets must not change halfway.
        Some(dir) => saved_config(dir, &args.options)?,
        None => {
            let mut config = args.options.config(args.arch, &args.run, &SCRATCH)?;
            config.teacher = args
                .teacher
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            if !config.teacher.is_empty() {
                config.teacher_weight = args.teacher_weight;
            }
            config
        }
    };
    args.averaging.apply(&mut config)?;
    let ds = crate::cmd::data::load(&args.data)?;
    let mut data = train_data(
        &args.data,
        &ds,
        config.seed,
        config.limit,
        args.run.val_limit,
    )?;
    if !config.teacher.is_empty() {
        let teachers: Vec<PathBuf> = config.teacher.iter().map(PathBuf::from).collect();
        data.train = Arc::new(distilled(&data, &teachers, config.teacher_weight, &device)?);
    }
    let start = if args.resume.is_some() {
        Start::Resume
    } else {
        Start::Scratch
    };
    run_training(&data, config, &out, start, &device)
}

/// The training samples with targets mixed from their labels (or soft targets) and the
/// teachers' probabilities, on each image and its mirror, `weight` the teachers' share.
fn distilled(
    data: &TrainData,
    teachers: &[PathBuf],
    weight: f64,
    device: &burn::tensor::Device,
) -> Result<Samples> {
    let models = ferrite_model::Ensemble::load(teachers, device)?;
    let name = ferrite_model::ensemble::describe(teachers);
    if models.meta().classes != data.classes {
        bail!(
            "the teacher {name} has the classes {}, the dataset {}: a teacher must name the dataset's classes, in order",
            models.meta().classes.join(", "),
            data.classes.join(", ")
        );
    }
    let started = std::time::Instant::now();
    let train = &data.train;
    let k = data.classes.len();
    let probs = models.predict_samples(train, Tta::Flip, 256, device, |_| {});
    let w = weight as f32;
    let mut targets = Vec::with_capacity(train.len() * k);
    for (i, p) in probs.iter().enumerate() {
        let label = train.label(i) as usize;
        for (c, &q) in p.iter().enumerate() {
            let own = match train.soft_target(i, k) {
                Some(t) => t[c],
                None => f32::from(c == label),
            };
            targets.push((1.0 - w) * own + w * q);
        }
    }
    let agree = probs
        .iter()
        .enumerate()
        .filter(|(i, p)| ferrite_model::predict::argmax(p) == train.label(*i) as usize)
        .count();
    eprintln!(
        "teacher {name}: targets for {} training images in {:.1} s (it agrees with {:.1} % of their labels), weight {weight}",
        train.len(),
        started.elapsed().as_secs_f64(),
        100.0 * agree as f64 / train.len() as f64
    );
    Ok(train.with_soft_targets(targets, k))
}

/// Runs one training with Ctrl-C handling: the first Ctrl-C stops after the batch and saves
/// the position, a second one quits at once. Exit code 0, or 130 when interrupted.
pub fn run_training(
    data: &TrainData,
    config: TrainConfig,
    out: &std::path::Path,
    start: Start,
    device: &burn::tensor::Device,
) -> Result<i32> {
    eprintln!(
        "{}: {} training images, {} validation images ({}), {} classes",
        data.dataset,
        data.train.len(),
        data.val.len(),
        data.val_name,
        data.classes.len()
    );
    stop_on_ctrl_c()?;
    match ferrite_train::train(data, config, out, start, device, Log::Batches, &|_| {
        stopping()
    })
    .map_err(anyhow::Error::msg)?
    {
        Outcome::Finished => Ok(0),
        Outcome::Interrupted => Ok(130),
    }
}

/// Installs the Ctrl-C handler: the first press asks [`stopping`] to say yes, the second
/// quits at once.
pub fn stop_on_ctrl_c() -> Result<()> {
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130); // a second Ctrl-C: stop now
        }
        eprintln!("\nstopping after this batch (Ctrl-C again to quit at once)...");
    })
    .context("cannot install the Ctrl-C handler")
}

/// Whether the user asked to stop.
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The training and validation sets of a dataset, as a run uses them.
pub fn train_data(
    args: &DatasetArgs,
    ds: &Dataset,
    seed: u64,
    limit: Option<usize>,
    val_limit: Option<usize>,
) -> Result<TrainData> {
    let source = args.source();
    let train_split = ds.split_by_role(SplitRole::Train).with_context(|| {
        format!(
            "{} has no training split (it has: {})",
            ds.name,
            ds.split_names()
        )
    })?;
    let mut train = train_split.samples.clone();
    let (mut val, mut val_name) = match validation_split(&source, ds)? {
        Some(v) => v,
        None => {
            let (t, v) = holdout(&train, ds.classes.len(), 0.1, seed);
            let n = v.len();
            train = t;
            (v, format!("{n}-image hold-out of {}", train_split.name))
        }
    };
    if let Some(n) = limit {
        let order = ferrite_data::loader::epoch_order(train.len(), true, seed, u64::MAX - 1);
        train = train.subset(&order[..n.min(train.len())], ds.classes.len());
    }
    if let Some(n) = val_limit.filter(|&n| n < val.len()) {
        let (_, subset) = holdout(&val, ds.classes.len(), n as f64 / val.len() as f64, seed);
        val = subset;
        val_name = format!("{} images of {val_name}", val.len());
    }
    if train.is_empty() || val.is_empty() {
        bail!(
            "{}: the training and validation sets must not be empty",
            ds.name
        );
    }
    Ok(TrainData {
        dataset: ds.name.clone(),
        classes: ds.classes.clone(),
        train: Arc::new(train),
        val: Arc::new(val),
        val_name,
    })
}

/// The validation split. FERPlus trained on vote distributions is still selected on
/// majority labels, the FERPlus test protocol.
fn validation_split(source: &DataSource, ds: &Dataset) -> Result<Option<(Samples, String)>> {
    if let DataSource::FerPlus {
        csv,
        votes,
        mode: LabelMode::Distribution,
    } = source
    {
        let majority = DataSource::FerPlus {
            csv: csv.clone(),
            votes: votes.clone(),
            mode: LabelMode::Majority,
        }
        .load()?;
        let val = majority
            .split_by_role(SplitRole::Val)
            .expect("FERPlus has a validation split");
        return Ok(Some((
            val.samples.clone(),
            format!("{} (majority)", val.name),
        )));
    }
    Ok(ds
        .split_by_role(SplitRole::Val)
        .map(|s| (s.samples.clone(), s.name.clone())))
}

/// A seeded stratified split: `fraction` of each class goes to the hold-out.
pub fn holdout(samples: &Samples, classes: usize, fraction: f64, seed: u64) -> (Samples, Samples) {
    let order = ferrite_data::loader::epoch_order(samples.len(), true, seed, u64::MAX);
    let mut keep = Vec::new();
    let mut held = Vec::new();
    for c in 0..classes {
        let members: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| samples.label(i) as usize == c)
            .collect();
        let n_held = ((members.len() as f64) * fraction).round() as usize;
        let n_held = if members.len() >= 2 { n_held.max(1) } else { 0 };
        held.extend_from_slice(&members[..n_held]);
        keep.extend_from_slice(&members[n_held..]);
    }
    keep.sort_unstable();
    held.sort_unstable();
    (
        samples.subset(&keep, classes),
        samples.subset(&held, classes),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: TrainOptions,
        #[command(flatten)]
        run: RunOptions,
    }

    fn config(args: &[&str], d: &Defaults) -> TrainConfig {
        let cli = Cli::parse_from(std::iter::once("ferrite").chain(args.iter().copied()));
        cli.options.config(ArchKind::Ferrite, &cli.run, d).unwrap()
    }

    /// The error of settings that parse but make no valid run.
    fn config_error(args: &[&str]) -> String {
        let cli = Cli::parse_from(std::iter::once("ferrite").chain(args.iter().copied()));
        let err = cli.options.config(ArchKind::Ferrite, &cli.run, &SCRATCH);
        err.unwrap_err().to_string()
    }

    #[test]
    fn the_optimizer_and_its_rate_default_per_use_and_yield_to_the_flags() {
        let c = config(&[], &SCRATCH);
        assert_eq!((c.optimizer, c.lr), (OptimizerKind::Sgd, 0.05));
        let c = config(&[], &SMALL_SCRATCH);
        assert_eq!((c.optimizer, c.lr), (OptimizerKind::AdamW, 0.002));
        let c = config(&[], &FINETUNE);
        assert_eq!((c.optimizer, c.lr), (OptimizerKind::Sgd, 0.001));
        let c = config(&["--optimizer", "sgd"], &SMALL_SCRATCH);
        assert_eq!((c.optimizer, c.lr), (OptimizerKind::Sgd, 0.05));
        let c = config(&["--optimizer", "adamw", "--lr", "0.001"], &SCRATCH);
        assert_eq!((c.optimizer, c.lr), (OptimizerKind::AdamW, 0.001));
    }

    #[test]
    fn fill_changes_only_the_padding_of_the_chosen_augmentation() {
        let c = config(&["--augment", "framing", "--fill", "mixed"], &SCRATCH);
        let framing = AugmentConfig::framing();
        assert_eq!(framing.fill, Fill::Edge);
        assert_eq!(
            c.augment,
            AugmentConfig {
                fill: Fill::Mixed,
                ..framing
            }
        );
        let c = config(&["--fill", "gray"], &SCRATCH);
        assert_eq!(c.augment.fill, Fill::Gray);
        assert_eq!(c.augment.scale, AugmentConfig::default().scale);
        assert!(config_error(&["--augment", "none", "--fill", "gray"]).contains("--fill"));
    }

    #[test]
    fn mix_defaults_per_kind_and_rejects_bad_settings() {
        assert_eq!(config(&[], &SCRATCH).mix, None);
        let c = config(&["--mix", "cutmix"], &SCRATCH);
        assert_eq!(
            c.mix,
            Some(MixConfig {
                kind: MixKind::Cutmix,
                alpha: 1.0,
                prob: 0.5
            })
        );
        let c = config(&["--mix", "mixup", "--mix-prob", "1"], &SCRATCH);
        assert_eq!(c.mix.map(|m| (m.alpha, m.prob)), Some((0.2, 1.0)));
        assert!(Cli::try_parse_from(["ferrite", "--mix-alpha", "0.4"]).is_err());
        assert!(config_error(&["--mix", "mixup", "--mix-alpha", "0"]).contains("alpha"));
    }

    #[test]
    fn sam_takes_a_positive_radius() {
        assert_eq!(config(&[], &SCRATCH).sam, None);
        assert_eq!(config(&["--sam", "0.05"], &SCRATCH).sam, Some(0.05));
        for bad in ["0", "inf", "NaN"] {
            assert!(config_error(&["--sam", bad]).contains("--sam"), "{bad}");
        }
    }
}
