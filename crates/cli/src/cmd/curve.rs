//! `ferrite curve`: test accuracy against the number of training images per class, for a
//! network trained from scratch and for a fine-tuned model.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ferrite_data::SplitRole;
use ferrite_data::folds::per_class;
use ferrite_model::ArchKind;
use ferrite_train::plot::{CurveLine, learning_curve};
use ferrite_train::study::{copies_for_steps, fit_and_score, mean_std, repeated};
use ferrite_train::{Start, TrainData};

use crate::cmd::finetune::Transfer;
use crate::cmd::train::{
    RunOptions, SMALL_SCRATCH, TrainOptions, parse_arch, stop_on_ctrl_c, stopping, train_data,
};
use crate::dataset_args::DatasetArgs;
use crate::output::{align_numbers, table};

/// Learning curve: test accuracy against training images per class.
///
/// For each n of --per-class and each of --repeats seeded draws, n training images per
/// class are drawn from the training split; --arch is trained from scratch on them (with
/// AdamW unless --optimizer says otherwise) and the built-in model (or --from) is
/// fine-tuned on the same images. Every run chooses its epoch
/// on the same stratified subset of the validation split (--val-limit, default 700 images)
/// and is scored once on the whole test split. Runs take at least --min-steps optimiser
/// steps (tiny sets make more passes over their images). Results go to OUT/curve.csv, a
/// row per run as it finishes (run the same command again to continue a stopped curve),
/// and OUT/curve.png. Rows are kept per network, so a second command with another --arch
/// and the same --out adds its line to the same plot.
///
/// Example: ferrite curve --fer2013 fer2013.csv.gz --per-class 10,25,50,100,250 --repeats 3 --out runs/curve
///
/// Then mini-Xception's line in the same plot: ferrite curve --fer2013 fer2013.csv.gz
/// --per-class 10,25,50,100,250 --repeats 3 --out runs/curve --arch mini-xception --methods scratch
#[derive(Debug, Args)]
pub struct CurveArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// Training images per class, comma-separated; `all` is the whole training split.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,100,250,all", value_parser = parse_per_class)]
    per_class: Vec<PerClass>,
    /// Seeded draws of the training images per size.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Network trained from scratch.
    #[arg(long, default_value = "ferrite", value_parser = parse_arch)]
    arch: ArchKind,
    /// Model to fine-tune [default: the built-in model].
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Methods to compare.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Method::Scratch, Method::Finetune])]
    methods: Vec<Method>,
    /// Fewest optimiser steps a run takes.
    /// (On FER2013, 100 faces per class from scratch scored 31 % after 300 steps and
    /// 42 % after 1,000.)
    #[arg(long, default_value_t = 1000)]
    min_steps: usize,
    /// Folder for curve.csv and curve.png.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    options: TrainOptions,
    #[command(flatten)]
    run: RunOptions,
}

/// A training-set size: n images per class, or all of the training split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PerClass(Option<usize>);

impl std::fmt::Display for PerClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("all"),
        }
    }
}

fn parse_per_class(s: &str) -> Result<PerClass, String> {
    match s.trim() {
        "all" => Ok(PerClass(None)),
        n => match n.parse::<usize>() {
            Ok(n) if n > 0 => Ok(PerClass(Some(n))),
            _ => Err(format!("`{s}`: expected a positive number or `all`")),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Method {
    /// --arch from random initialisation.
    Scratch,
    /// The built-in model (or --from) with a new classifier.
    Finetune,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Scratch => "scratch",
            Method::Finetune => "finetune",
        }
    }
}

/// `epochs` and `best_epoch` count passes over the drawn images.
const HEADER: &str =
    "method,arch,per_class,repeat,train_images,epochs,best_epoch,accuracy,macro_f1,seconds";

/// One finished run: a line of curve.csv.
struct Row {
    method: String,
    arch: String,
    per_class: String,
    repeat: usize,
    train_images: usize,
    epochs: usize,
    best_epoch: usize,
    accuracy: f64,
    macro_f1: f64,
    seconds: f64,
}

fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let bad = || format!("{}: line {}: expected {HEADER}", path.display(), n + 1);
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 10 {
            bail!(bad());
        }
        let num = |i: usize| f[i].parse::<f64>().with_context(bad);
        rows.push(Row {
            method: f[0].into(),
            arch: f[1].into(),
            per_class: f[2].into(),
            repeat: num(3)? as usize,
            train_images: num(4)? as usize,
            epochs: num(5)? as usize,
            best_epoch: num(6)? as usize,
            accuracy: num(7)?,
            macro_f1: num(8)?,
            seconds: num(9)?,
        });
    }
    Ok(rows)
}

fn write_rows(path: &Path, rows: &[Row]) -> Result<()> {
    let mut text = format!("{HEADER}\n");
    for r in rows {
        writeln!(
            text,
            "{},{},{},{},{},{},{},{:.6},{:.6},{:.1}",
            r.method,
            r.arch,
            r.per_class,
            r.repeat,
            r.train_images,
            r.epochs,
            r.best_epoch,
            r.accuracy,
            r.macro_f1,
            r.seconds
        )
        .expect("write to a string");
    }
    ferrite_data::atomic::write_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A line of the curve: method and network.
type Line = (String, String);

/// Mean and sample standard deviation of accuracy and the mean training-set size, per
/// line and size.
type Summary = BTreeMap<(Line, String), (f64, f64, f64, usize)>;

fn summarise(rows: &[Row]) -> Summary {
    let mut groups: BTreeMap<(Line, String), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups
            .entry(((r.method.clone(), r.arch.clone()), r.per_class.clone()))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|(key, rs)| {
            let accuracy: Vec<f64> = rs.iter().map(|r| r.accuracy).collect();
            let (mean, std) = mean_std(&accuracy);
            let images = rs.iter().map(|r| r.train_images as f64).sum::<f64>() / rs.len() as f64;
            (key, (images, mean, std, rs.len()))
        })
        .collect()
}

fn draw(rows: &[Row], classes: usize, dataset: &str, path: &Path) -> Result<()> {
    let mut lines: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for (((method, arch), _), (images, mean, std, _)) in summarise(rows) {
        lines
            .entry(format!("{method} ({arch})"))
            .or_default()
            .push((images / classes as f64, mean, std));
    }
    let lines: Vec<CurveLine> = lines
        .into_iter()
        .map(|(label, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            CurveLine { label, points }
        })
        .collect();
    learning_curve(
        &lines,
        &format!("{dataset}: test accuracy vs training images per class"),
        path,
    )
    .map_err(anyhow::Error::msg)
}

pub fn run(args: CurveArgs) -> Result<i32> {
    if args.run.limit.is_some() {
        bail!("--limit does not apply to curve: --per-class sets the training images");
    }
    if args.repeats == 0 || args.per_class.is_empty() || args.methods.is_empty() {
        bail!("--repeats, --per-class and --methods must not be empty");
    }
    let device = args.run.device()?;
    let seed = args.options.seed;
    let ds = crate::cmd::data::load(&args.data)?;
    let test = ds
        .split_by_role(SplitRole::Test)
        .with_context(|| {
            format!(
                "{} has no test split (it has: {})",
                ds.name,
                ds.split_names()
            )
        })?
        .samples
        .clone();
    let base = train_data(
        &args.data,
        &ds,
        seed,
        None,
        Some(args.run.val_limit.unwrap_or(700)),
    )?;
    let classes = base.classes.len();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let csv = args.out.join("curve.csv");
    let png = args.out.join("curve.png");
    let mut rows = read_rows(&csv)?;
    if !rows.is_empty() {
        eprintln!("{}: {} runs done, continuing", csv.display(), rows.len());
    }
    let scratch_dir = tempfile::tempdir().context("a temporary folder for the runs")?;
    let transfer = if args.methods.contains(&Method::Finetune) {
        Some(Transfer::load(
            args.from.as_deref(),
            &base.classes,
            seed,
            &device,
        )?)
    } else {
        None
    };
    stop_on_ctrl_c()?;
    let mut sizes = args.per_class.clone();
    sizes.sort();
    sizes.dedup();
    for &size in &sizes {
        for repeat in 0..args.repeats {
            // The same draw for every method.
            let draw_seed = seed.wrapping_add(1000 * repeat as u64 + 1);
            let chosen = per_class(base.train.labels(), classes, size.0, draw_seed);
            let train = Arc::new(base.train.subset(&chosen, classes));
            for &method in &args.methods {
                let (start, mut config) = match method {
                    Method::Scratch => (
                        Start::Scratch,
                        args.options.config(args.arch, &args.run, &SMALL_SCRATCH)?,
                    ),
                    Method::Finetune => transfer.as_ref().expect("loaded when fine-tuning").start(
                        &args.options,
                        &args.run,
                        0,
                    )?,
                };
                let arch = config.arch.to_string();
                let done = rows.iter().any(|r| {
                    r.method == method.name()
                        && r.arch == arch
                        && r.per_class == size.to_string()
                        && r.repeat == repeat + 1
                });
                if done {
                    continue;
                }
                config.epochs = args.options.epochs.unwrap_or(30);
                config.seed = draw_seed;
                let copies = copies_for_steps(
                    train.len(),
                    config.batch_size,
                    config.epochs,
                    args.min_steps,
                );
                let epochs = config.epochs * copies;
                eprintln!(
                    "{} per class, repeat {}/{}, {} ({arch}): {} images, {epochs} passes",
                    size,
                    repeat + 1,
                    args.repeats,
                    method.name(),
                    train.len()
                );
                let data = TrainData {
                    train: Arc::new(repeated(&train, copies, classes)),
                    ..base.clone()
                };
                let out =
                    scratch_dir
                        .path()
                        .join(format!("{}-{size}-{}", method.name(), repeat + 1));
                let scores =
                    fit_and_score(&data, &test, config, start, &out, &device, &|_| stopping())
                        .map_err(anyhow::Error::msg)?;
                let _ = std::fs::remove_dir_all(&out);
                eprintln!(
                    "  test accuracy {:.4}, macro-F1 {:.4} (epoch {}, {:.0} s)",
                    scores.accuracy, scores.macro_f1, scores.epoch, scores.seconds
                );
                rows.push(Row {
                    method: method.name().into(),
                    arch,
                    per_class: size.to_string(),
                    repeat: repeat + 1,
                    train_images: train.len(),
                    epochs,
                    best_epoch: scores.epoch * copies,
                    accuracy: scores.accuracy,
                    macro_f1: scores.macro_f1,
                    seconds: scores.seconds,
                });
                write_rows(&csv, &rows)?;
                draw(&rows, classes, &ds.name, &png)?;
            }
        }
    }

    // Every line in the file, this command's and earlier ones', size by size.
    let summary = summarise(&rows);
    let mut t = table(
        [
            "per class",
            "method",
            "network",
            "runs",
            "train images",
            "test accuracy",
        ]
        .map(String::from)
        .to_vec(),
    );
    let mut all_sizes: Vec<PerClass> = summary
        .keys()
        .filter_map(|(_, size)| parse_per_class(size).ok())
        .collect();
    all_sizes.sort();
    all_sizes.dedup();
    for size in all_sizes {
        for (((method, arch), s), (images, mean, std, n)) in &summary {
            if *s == size.to_string() {
                t.add_row(vec![
                    s.clone(),
                    method.clone(),
                    arch.clone(),
                    n.to_string(),
                    format!("{images:.0}"),
                    format!("{:.2} ± {:.2} %", mean * 100.0, std * 100.0),
                ]);
            }
        }
    }
    align_numbers(&mut t);
    println!("{t}");
    println!("\n{} and {}", csv.display(), png.display());
    Ok(0)
}
