//! `ferrite finetune`: adapt a trained model to a dataset of one's own.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use ferrite_data::classes::map_classes;
use ferrite_model::{ArchConfig, ModelMeta, Network};
use ferrite_train::{Start, TrainConfig};

use crate::cmd::train::{
    Averaging, FINETUNE, RunOptions, TrainOptions, run_training, saved_config, train_data,
};
use crate::dataset_args::DatasetArgs;

/// Fine-tune a trained model (the built-in one by default) on a dataset.
///
/// The model's classifier is rebuilt for the dataset's classes: classes the model already
/// knows (matched by name: "happiness" is Happy) keep what they learned, new classes start
/// fresh. The whole network then trains at a lower rate (SGD 0.001, cosine), with
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
    /// Hold the first N stages fixed (ferrite, vgg13 and vgg13-bn have 4, mini-xception 5).
    #[arg(long, value_name = "N", default_value_t = 0)]
    freeze: usize,
    #[command(flatten)]
    averaging: Averaging,
    #[command(flatten)]
    options: TrainOptions,
    #[command(flatten)]
    run: RunOptions,
}

pub fn run(args: FinetuneArgs) -> Result<i32> {
    let device = args.run.device()?;
    // On resume the saved configuration wins but for its length and averaging (see
    // `ferrite_train::train`), and its seed and limit choose the data as they did.
    let saved = match &args.resume {
        Some(dir) => Some(saved_config(dir, &args.options)?),
        None => None,
    };
    let (seed, limit) = match &saved {
        Some(c) => (c.seed, c.limit),
        None => (args.options.seed, args.run.limit),
    };
    let ds = crate::cmd::data::load(&args.data)?;
    let data = train_data(&args.data, &ds, seed, limit, args.run.val_limit)?;
    if let (Some(dir), Some(mut config)) = (&args.resume, saved) {
        args.averaging.apply(&mut config)?;
        return run_training(&data, config, dir, Start::Resume, &device);
    }
    let out = args
        .out
        .as_deref()
        .expect("clap requires --out or --resume");
    let transfer = Transfer::load(args.from.as_deref(), &data.classes, seed, &device)?;
    let (start, mut config) = transfer.start(&args.options, &args.run, args.freeze)?;
    args.averaging.apply(&mut config)?;
    run_training(&data, config, out, start, &device)
}

/// A model to fine-tune (a file, or the built-in one) and the dataset's classes. Every run
/// starts from a fresh load of the file: a clone of a loaded network would share its batch
/// norm running statistics, so one run's training would leak into the next run's start.
pub struct Transfer {
    bytes: Vec<u8>,
    /// The model's file, or "built-in".
    name: String,
    classes: Vec<String>,
    /// Seeds the rows of classes the model does not know.
    seed: u64,
    train_device: Device,
}

impl Transfer {
    /// Reads `from` (the built-in model when `None`) for fine-tuning on `classes` and says
    /// which classes it keeps.
    pub fn load(
        from: Option<&Path>,
        classes: &[String],
        seed: u64,
        device: &Device,
    ) -> Result<Transfer> {
        let (bytes, name) = match from {
            Some(path) => (ferrite_model::file::read(path)?, path.display().to_string()),
            None => (
                ferrite_infer::builtin::BYTES.to_vec(),
                ferrite_infer::builtin::NAME.to_string(),
            ),
        };
        let transfer = Transfer {
            bytes,
            name,
            classes: classes.to_vec(),
            seed,
            train_device: device.clone().autodiff(),
        };
        let (_, meta) = transfer.read()?;
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
            "fine-tuning {} ({}, trained on {}): keeps {} [{}], learns {} new [{}]",
            transfer.name,
            meta.arch.arch,
            meta.dataset,
            known.len(),
            known.join(", "),
            new.len(),
            new.join(", ")
        );
        Ok(transfer)
    }

    fn read(&self) -> Result<(Network, ModelMeta)> {
        ferrite_model::file::from_bytes(self.bytes.clone(), &self.name, &self.train_device)
            .with_context(|| format!("the model to fine-tune ({})", self.name))
    }

    /// The model, freshly loaded, with its classifier rebuilt for the classes.
    fn network(&self) -> Result<(ArchConfig, Network)> {
        let (net, meta) = self.read()?;
        self.train_device.seed(self.seed);
        Ok(net.with_classes(&meta.arch, &meta.classes, &self.classes, &self.train_device))
    }

    /// A fine-tuning run's start (the model freshly loaded, its classifier rebuilt for the
    /// classes) and configuration: the fine-tuning defaults, `freeze` stages held fixed,
    /// and the model it came from.
    pub fn start(
        &self,
        options: &TrainOptions,
        run: &RunOptions,
        freeze: usize,
    ) -> Result<(Start, TrainConfig)> {
        let (arch, net) = self.network()?;
        let mut config = options.config(arch.arch, run, &FINETUNE)?;
        config.freeze = freeze;
        config.from = Some(self.name.clone());
        Ok((Start::From(arch, net), config))
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    /// Runs that fine-tune one loaded model (cv's folds, curve's sizes) must each start from
    /// the model as it is in the file, even after an earlier run trained in batch norm's
    /// training mode, which updates the running statistics.
    #[test]
    fn every_run_starts_from_the_model_in_the_file() {
        let device = ferrite_model::device::parse("cpu").unwrap();
        let classes = ["Happy", "Sad", "Llama"].map(String::from).to_vec();
        let transfer = Transfer::load(None, &classes, 3, &device).unwrap();
        let faces = Tensor::<4>::random([4, 1, 48, 48], Distribution::Normal(0.0, 1.0), &device);
        let eval_logits = |net: &Network| net.valid().forward(faces.clone()).into_data();

        let (_, first) = transfer.network().unwrap();
        let before = eval_logits(&first);
        // A training-mode pass on faces unlike the training data moves the statistics.
        let shifted = Tensor::<4>::random(
            [16, 1, 48, 48],
            Distribution::Normal(3.0, 5.0),
            &device.clone().autodiff(),
        );
        let _ = first.forward(shifted);
        first.sync_running_stats();
        assert_ne!(
            eval_logits(&first),
            before,
            "the pass should change the statistics"
        );

        let (_, second) = transfer.network().unwrap();
        assert_eq!(eval_logits(&second), before);
    }
}
