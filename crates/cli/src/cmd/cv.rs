//! `ferrite cv`: how good a model trained on a small dataset really is, by K-fold
//! cross-validation.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use ferrite_data::Samples;
use ferrite_data::folds::{group_keys, stratified_folds};
use ferrite_model::ArchKind;
use ferrite_train::study::{copies_for_steps, fit_and_score, mean_std, repeated};
use ferrite_train::{Start, TrainData};
use regex::Regex;
use serde_json::json;

use crate::cmd::finetune::Transfer;
use crate::cmd::train::{
    RunOptions, SMALL_SCRATCH, TrainOptions, parse_arch, stop_on_ctrl_c, stopping,
};
use crate::dataset_args::DatasetArgs;
use crate::output::{align_numbers, confusion_table, table};

/// Estimate accuracy by stratified K-fold cross-validation.
///
/// All splits of the dataset are pooled and dealt into K folds, each class spread evenly.
/// With --group-regex, all images of one group (one person) stay in one fold, so that no
/// one is on both the training and the test side. For each fold: train on the other folds
/// (a tenth of them, by group, held out to choose the epoch) and score on the fold. Prints
/// per-fold and mean ± std accuracy and macro-F1, and the confusion matrix summed over the
/// folds. By default each fold fine-tunes the built-in model; --arch trains from scratch
/// (with AdamW unless --optimizer says otherwise). Every run takes at least --min-steps
/// optimiser steps (a small training side is repeated within each epoch).
///
/// Example: ferrite cv --images ckplus/ --folds 10 --group-regex '^(S\d+)_'
#[derive(Debug, Args)]
pub struct CvArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// Number of folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Train each fold from scratch with this network, instead of fine-tuning.
    #[arg(long, value_parser = parse_arch, conflicts_with = "from")]
    arch: Option<ArchKind>,
    /// Fine-tune this model in each fold [default: the built-in model].
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// A regular expression on file names whose first group (or whole match) names the
    /// person; e.g. '^(S\d+)_' for CK+ names like S005_001_00000011.png.
    #[arg(long, value_name = "RE")]
    group_regex: Option<String>,
    /// Fine-tuning: hold the first N stages fixed.
    #[arg(long, value_name = "N", default_value_t = 0, conflicts_with = "arch")]
    freeze: usize,
    /// Fewest optimiser steps a fold's run takes: a small training side is repeated within
    /// each epoch until the epochs reach it. (On FER2013, 100 faces per class from scratch
    /// scored 31 % after 300 steps and 42 % after 1,000.)
    #[arg(long, default_value_t = 1000)]
    min_steps: usize,
    /// Keep each fold's run folder here (fold-1, fold-2...) and folds.csv, the fold of each
    /// image [default: a temporary folder].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    options: TrainOptions,
    #[command(flatten)]
    run: RunOptions,
}

/// One fold's result.
struct Fold {
    train: usize,
    val: usize,
    test: usize,
    scores: ferrite_train::study::Scores,
}

pub fn run(args: CvArgs) -> Result<i32> {
    let device = args.run.device()?;
    let seed = args.options.seed;
    let ds = crate::cmd::data::load(&args.data)?;
    let classes = ds.classes.clone();
    let mut pooled = ds.pooled();
    if let Some(n) = args.run.limit.filter(|&n| n < pooled.len()) {
        let order = ferrite_data::loader::epoch_order(pooled.len(), true, seed, u64::MAX - 1);
        pooled = pooled.subset(&order[..n], classes.len());
    }
    let groups = match &args.group_regex {
        Some(re) => {
            let re = Regex::new(re).with_context(|| format!("--group-regex {re}"))?;
            Some(group_keys(&pooled, &re).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let fold_of = stratified_folds(
        pooled.labels(),
        classes.len(),
        groups.as_deref(),
        args.folds,
        seed,
    )
    .map_err(anyhow::Error::msg)?;
    let method = match (args.arch, &args.from) {
        (Some(arch), _) => format!("{arch} from scratch"),
        (None, Some(path)) => format!("fine-tuned from {}", path.display()),
        (None, None) => format!("fine-tuned from the {} model", ferrite_infer::builtin::NAME),
    };
    let n_groups = groups.as_deref().map(distinct);
    eprintln!(
        "{}: {} images, {} classes{}; {}-fold cross-validation, {method}",
        ds.name,
        pooled.len(),
        classes.len(),
        n_groups.map_or(String::new(), |n| format!(", {n} groups")),
        args.folds
    );

    let temp = tempfile::tempdir().context("a temporary folder for the fold runs")?;
    let root = args
        .out
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    if args.out.is_some() {
        write_folds(&root, &pooled, &classes, groups.as_deref(), &fold_of)?;
    }
    let transfer = match args.arch {
        Some(_) => None,
        None => Some(Transfer::load(
            args.from.as_deref(),
            &classes,
            seed,
            &device,
        )?),
    };
    stop_on_ctrl_c()?;
    let mut folds = Vec::new();
    for f in 0..args.folds {
        let test_idx: Vec<usize> = (0..pooled.len()).filter(|&i| fold_of[i] == f).collect();
        let rest: Vec<usize> = (0..pooled.len()).filter(|&i| fold_of[i] != f).collect();
        // A tenth of the training side, by group as well, chooses the epoch.
        let rest_labels: Vec<u32> = rest.iter().map(|&i| pooled.label(i)).collect();
        let rest_groups: Option<Vec<String>> = groups
            .as_ref()
            .map(|g| rest.iter().map(|&i| g[i].clone()).collect());
        let inner_k = match &rest_groups {
            Some(g) => distinct(g).clamp(2, 10),
            None => 10.min(rest.len()).max(2),
        };
        let inner = stratified_folds(
            &rest_labels,
            classes.len(),
            rest_groups.as_deref(),
            inner_k,
            seed + 1 + f as u64,
        )
        .map_err(anyhow::Error::msg)?;
        let pick = |keep: bool| -> Vec<usize> {
            rest.iter()
                .zip(&inner)
                .filter(|(_, k)| (**k == 0) != keep)
                .map(|(&i, _)| i)
                .collect()
        };
        let (train_idx, val_idx) = (pick(true), pick(false));
        let test: Samples = pooled.subset(&test_idx, classes.len());
        let (start, config) = match args.arch {
            Some(arch) => (
                Start::Scratch,
                args.options.config(arch, &args.run, &SMALL_SCRATCH)?,
            ),
            None => transfer.as_ref().expect("loaded when fine-tuning").start(
                &args.options,
                &args.run,
                args.freeze,
            )?,
        };
        let copies = copies_for_steps(
            train_idx.len(),
            config.batch_size,
            config.epochs,
            args.min_steps,
        );
        let train = pooled.subset(&train_idx, classes.len());
        let data = TrainData {
            dataset: ds.name.clone(),
            classes: classes.clone(),
            train: Arc::new(repeated(&train, copies, classes.len())),
            val: Arc::new(pooled.subset(&val_idx, classes.len())),
            val_name: "hold-out".into(),
        };
        eprintln!(
            "fold {}/{}: train {}{}, hold-out {}, test {}",
            f + 1,
            args.folds,
            train_idx.len(),
            if copies > 1 {
                format!(" (x{copies} per epoch, for {} steps)", args.min_steps)
            } else {
                String::new()
            },
            val_idx.len(),
            test_idx.len()
        );
        let out = root.join(format!("fold-{}", f + 1));
        let scores = fit_and_score(&data, &test, config, start, &out, &device, &|_| stopping())
            .map_err(anyhow::Error::msg)?;
        eprintln!(
            "fold {}/{}: accuracy {:.4}, macro-F1 {:.4} (epoch {}, {:.0} s)",
            f + 1,
            args.folds,
            scores.accuracy,
            scores.macro_f1,
            scores.epoch,
            scores.seconds
        );
        folds.push(Fold {
            train: train_idx.len(),
            val: val_idx.len(),
            test: test_idx.len(),
            scores,
        });
    }
    if folds.is_empty() {
        bail!("no folds ran");
    }
    report(&args, &classes, &method, &folds);
    Ok(0)
}

/// `folds.csv`: which image went to which fold (to check, or to reuse the split).
fn write_folds(
    root: &std::path::Path,
    pooled: &Samples,
    classes: &[String],
    groups: Option<&[String]>,
    fold_of: &[usize],
) -> Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let mut text = String::from("image,class,group,fold\n");
    for (i, fold) in fold_of.iter().enumerate() {
        let image = match pooled.origin(i) {
            ferrite_data::Origin::File(p) => p.display().to_string(),
            ferrite_data::Origin::Row(r) => format!("row {r}"),
        };
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let group = groups.map_or("", |g| g[i].as_str());
        text.push_str(&format!(
            "{},{},{},{}\n",
            quote(&image),
            quote(&classes[pooled.label(i) as usize]),
            quote(group),
            fold + 1
        ));
    }
    let path = root.join("folds.csv");
    ferrite_data::atomic::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Number of distinct group keys.
fn distinct(groups: &[String]) -> usize {
    groups
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len()
}

fn report(args: &CvArgs, classes: &[String], method: &str, folds: &[Fold]) {
    let acc: Vec<f64> = folds.iter().map(|f| f.scores.accuracy).collect();
    let f1: Vec<f64> = folds.iter().map(|f| f.scores.macro_f1).collect();
    let (acc_mean, acc_std) = mean_std(&acc);
    let (f1_mean, f1_std) = mean_std(&f1);
    let mut summed = vec![vec![0u64; classes.len()]; classes.len()];
    for f in folds {
        for (row, r) in summed.iter_mut().zip(&f.scores.confusion.counts) {
            for (cell, n) in row.iter_mut().zip(r) {
                *cell += n;
            }
        }
    }
    if args.json {
        let doc = json!({
            "method": method,
            "folds": folds.iter().enumerate().map(|(i, f)| json!({
                "fold": i + 1,
                "train": f.train,
                "holdout": f.val,
                "test": f.test,
                "accuracy": f.scores.accuracy,
                "macro_f1": f.scores.macro_f1,
                "epoch": f.scores.epoch,
            })).collect::<Vec<_>>(),
            "accuracy": {"mean": acc_mean, "std": acc_std},
            "macro_f1": {"mean": f1_mean, "std": f1_std},
            "classes": classes,
            "confusion": summed,
        });
        println!("{doc:#}");
        return;
    }
    println!("{}-fold cross-validation, {method}\n", folds.len());
    let mut t = table(
        [
            "fold", "train", "hold-out", "test", "accuracy", "macro-F1", "epoch",
        ]
        .map(String::from)
        .to_vec(),
    );
    for (i, f) in folds.iter().enumerate() {
        t.add_row(vec![
            (i + 1).to_string(),
            f.train.to_string(),
            f.val.to_string(),
            f.test.to_string(),
            format!("{:.2} %", f.scores.accuracy * 100.0),
            format!("{:.4}", f.scores.macro_f1),
            f.scores.epoch.to_string(),
        ]);
    }
    align_numbers(&mut t);
    println!("{t}\n");
    println!(
        "accuracy {:.2} ± {:.2} %   macro-F1 {:.4} ± {:.4}   (mean ± std over folds)\n",
        acc_mean * 100.0,
        acc_std * 100.0,
        f1_mean,
        f1_std
    );
    println!("confusion matrix, summed over the folds:");
    println!("{}", confusion_table(classes, &summed));
}
