//! `ferrite finetune`: adapt a trained model to a dataset of one's own.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use ferrite_data::classes::map_classes;
use ferrite_model::{ArchConfig, ArchKind, Network};
use ferrite_train::{Start, TrainConfig};

use crate::cmd::train::{FINETUNE, RunOptions, TrainOptions, run_training, train_data};
use crate::dataset_args::DatasetArgs;

/// Fine-tune a trained model (the built-in one by default) on a dataset.
///
/// The model's classifier is rebuilt for the dataset's classes: classes the model already
/// knows (matched by name: "happiness" is Happy) keep what they learned, new classes start
/// fresh. The whole network then trains at a lower rate (SGD 0.01, cosine), with
/// augmentation and an early stop on the validation split (a folder without `val` gets a
/// seeded stratified 10 % hold-out); `--freeze N` holds the first N stages fixed. The
/// starting model is scored on the validation split too, and stays the result if no epoch
/// beats it. The run folder is the same as `ferrite train`'s; its best.safetensors is a
/// normal model file.
///
/// Example: ferrite finetune --images my-faces/ --out runs/mine
#[derive(Debug, Args)]
pub struct FinetuneArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// The trained model to start from [default: the built-in model].
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Run folder (created).
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the fine-tuning run in this folder from its last checkpoint.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Hold the first N stages fixed (ferrite and vgg13 have 4, mini-xception 5).
    #[arg(long, value_name = "N", default_value_t = 0)]
    freeze: usize,
    #[command(flatten)]
    options: TrainOptions,
    #[command(flatten)]
    run: RunOptions,
}

pub fn run(args: FinetuneArgs) -> Result<i32> {
    let device = args.run.device()?;
    let seed = args.options.seed;
    let ds = crate::cmd::data::load(&args.data)?;
    let data = train_data(&args.data, &ds, seed, args.run.limit, args.run.val_limit)?;
    if let Some(dir) = &args.resume {
        // The saved configuration wins; the architecture given here is not used.
        let config = args
            .options
            .config(ArchKind::Ferrite, &args.run, &FINETUNE)?;
        return run_training(&data, config, dir, Start::Resume, &device);
    }
    let out = args
        .out
        .as_deref()
        .expect("clap requires --out or --resume");
    let transfer = Transfer::load(args.from.as_deref(), &data.classes, seed, &device)?;
    let (start, config) = transfer.start(&args.options, &args.run, args.freeze)?;
    run_training(&data, config, out, start, &device)
}

/// A model to fine-tune (a file, or the built-in one), loaded once for training with its
/// classifier rebuilt for the dataset's classes; each run starts from a copy.
pub struct Transfer {
    arch: ArchConfig,
    net: Network,
    /// The model's file, or "built-in".
    name: String,
}

impl Transfer {
    /// Loads `from` (the built-in model when `None`) and rebuilds its classifier for
    /// `classes` (new rows seeded with `seed`). Says which classes it keeps.
    pub fn load(
        from: Option<&Path>,
        classes: &[String],
        seed: u64,
        device: &Device,
    ) -> Result<Transfer> {
        let train_device = device.clone().autodiff();
        let ((net, meta), name) = match from {
            Some(path) => (
                ferrite_model::file::load(path, &train_device)?,
                path.display().to_string(),
            ),
            None => (
                ferrite_infer::builtin::load(&train_device).context("the built-in model")?,
                ferrite_infer::builtin::NAME.to_string(),
            ),
        };
        let known: Vec<&str> = map_classes(classes, &meta.classes)
            .iter()
            .zip(classes)
            .filter_map(|(m, c)| m.map(|_| c.as_str()))
            .collect();
        let new: Vec<&str> = classes
            .iter()
            .map(String::as_str)
            .filter(|c| !known.contains(c))
            .collect();
        eprintln!(
            "fine-tuning {name} ({}, trained on {}): keeps {} [{}], learns {} new [{}]",
            meta.arch.arch,
            meta.dataset,
            known.len(),
            known.join(", "),
            new.len(),
            new.join(", ")
        );
        train_device.seed(seed);
        let (arch, net) = net.with_classes(&meta.arch, &meta.classes, classes, &train_device);
        Ok(Transfer { arch, net, name })
    }

    /// A fine-tuning run's start (a copy of the network) and configuration: the
    /// fine-tuning defaults, `freeze` stages held fixed, and the model it came from.
    pub fn start(
        &self,
        options: &TrainOptions,
        run: &RunOptions,
        freeze: usize,
    ) -> Result<(Start, TrainConfig)> {
        let mut config = options.config(self.arch.arch, run, &FINETUNE)?;
        config.freeze = freeze;
        config.from = Some(self.name.clone());
        Ok((Start::From(self.arch.clone(), self.net.clone()), config))
    }
}
