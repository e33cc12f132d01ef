//! `ferrite train`: train a network on a dataset.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ferrite_data::augment::AugmentConfig;
use ferrite_data::ferplus::LabelMode;
use ferrite_data::{DataSource, Dataset, Samples, SplitRole};
use ferrite_model::ArchKind;
use ferrite_train::config::{OptimizerKind, ScheduleKind, TrainConfig};
use ferrite_train::{Outcome, TrainData};

use crate::dataset_args::DatasetArgs;

/// Train a network (ferrite, mini-xception, vgg13) on a dataset.
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
    /// Epochs to train (with --resume: the run's new total).
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Images per optimiser step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, value_enum, default_value_t = Optimizer::Sgd)]
    optimizer: Optimizer,
    /// Peak learning rate [default: 0.05 for sgd, 0.002 for adamw].
    #[arg(long)]
    lr: Option<f64>,
    /// L2 weight decay (decoupled for AdamW).
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f64,
    /// SGD momentum (Nesterov, no dampening).
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = Schedule::OneCycle)]
    schedule: Schedule,
    /// Warm-up epochs (cosine and plateau schedules).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Plateau schedule: epochs without improvement before the rate is cut by 10.
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// Share of the target spread evenly over all classes.
    #[arg(long, default_value_t = 0.1)]
    label_smoothing: f64,
    /// Weight classes by inverse frequency in the loss.
    #[arg(long)]
    class_weights: bool,
    /// Dropout before the classifier [default: the architecture's own].
    #[arg(long)]
    dropout: Option<f64>,
    /// Turn off data augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Seed of initialisation, data order, augmentation and dropout (a run is reproducible).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// CPU threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Train on N training images only (a seeded random subset), for quick experiments.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Validate on N validation images only (a seeded stratified subset), for quick runs.
    #[arg(long, value_name = "N")]
    val_limit: Option<usize>,
    /// cpu, or gpu[:N] in a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Optimizer {
    /// SGD with Nesterov momentum (no dampening, as PyTorch).
    Sgd,
    /// Adam with decoupled weight decay (epsilon 1e-8, as PyTorch).
    Adamw,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Schedule {
    /// Linear warm-up, then cosine decay to zero.
    Cosine,
    /// Up to the peak over the first 30 % of steps, then down to peak/10^4.
    OneCycle,
    /// Divide by 10 when validation loss stalls for --patience epochs.
    Plateau,
}

pub fn parse_arch(s: &str) -> Result<ArchKind, String> {
    s.parse()
}

static STOP: AtomicBool = AtomicBool::new(false);

pub fn run(args: TrainArgs) -> Result<i32> {
    if let Some(t) = args.threads {
        ferrite_model::device::set_threads(t).map_err(anyhow::Error::msg)?;
    }
    let device = ferrite_model::device::parse(&args.device).map_err(anyhow::Error::msg)?;
    let out = args
        .resume
        .clone()
        .or(args.out.clone())
        .expect("clap requires --out or --resume");
    let (optimizer, default_lr) = match args.optimizer {
        Optimizer::Sgd => (OptimizerKind::Sgd, 0.05),
        Optimizer::Adamw => (OptimizerKind::AdamW, 0.002),
    };
    let config = TrainConfig {
        arch: args.arch,
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer,
        lr: args.lr.unwrap_or(default_lr),
        weight_decay: args.weight_decay,
        momentum: args.momentum,
        schedule: match args.schedule {
            Schedule::Cosine => ScheduleKind::Cosine,
            Schedule::OneCycle => ScheduleKind::OneCycle,
            Schedule::Plateau => ScheduleKind::Plateau,
        },
        warmup_epochs: args.warmup,
        patience: args.patience,
        label_smoothing: args.label_smoothing,
        class_weights: args.class_weights,
        dropout: args.dropout,
        augment: if args.no_augment {
            AugmentConfig::none()
        } else {
            AugmentConfig::default()
        },
        seed: args.seed,
        limit: args.limit,
        device: args.device.clone(),
    };
    if config.batch_size == 0 || config.epochs == 0 {
        bail!("--epochs and --batch-size must be at least 1");
    }
    let data = train_data(&args.data, config.seed, config.limit, args.val_limit)?;
    eprintln!(
        "{}: {} training images, {} validation images ({}), {} classes",
        data.dataset,
        data.train.len(),
        data.val.len(),
        data.val_name,
        data.classes.len()
    );
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130); // a second Ctrl-C: stop now
        }
        eprintln!("\nstopping after this batch (Ctrl-C again to quit at once)...");
    })
    .context("cannot install the Ctrl-C handler")?;
    match ferrite_train::train(&data, config, &out, args.resume.is_some(), &device, &|_| {
        STOP.load(Ordering::SeqCst)
    })
    .map_err(anyhow::Error::msg)?
    {
        Outcome::Finished => Ok(0),
        Outcome::Interrupted => Ok(130),
    }
}

/// The training and validation sets of a dataset, as a run uses them.
pub fn train_data(
    args: &DatasetArgs,
    seed: u64,
    limit: Option<usize>,
    val_limit: Option<usize>,
) -> Result<TrainData> {
    let source = args.source();
    let ds = crate::cmd::data::load(args)?;
    let train_split = ds.split_by_role(SplitRole::Train).with_context(|| {
        format!(
            "{} has no training split (it has: {})",
            ds.name,
            ds.split_names()
        )
    })?;
    let mut train = train_split.samples.clone();
    let (mut val, mut val_name) = match validation_split(&source, &ds)? {
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
