//! `ferrite data`: look at, validate and export datasets.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ferrite_data::{Dataset, Split};
use serde_json::json;

use crate::dataset_args::DatasetArgs;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Count images per split and class.
    ///
    /// Example: ferrite data stats --fer2013 fer2013.csv.gz --ferplus fer2013new.csv
    Stats {
        #[command(flatten)]
        data: DatasetArgs,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validate a dataset completely and list every problem (file, line, what was expected).
    ///
    /// Exits with 0 only when everything is valid.
    ///
    /// Example: ferrite data check --fer2013 fer2013.csv
    Check {
        #[command(flatten)]
        data: DatasetArgs,
        /// Problems listed in full; the rest are only counted.
        #[arg(long, default_value_t = 100, value_name = "N")]
        max_problems: usize,
    },
    /// Draw a contact sheet: one labelled row of sample faces per class.
    ///
    /// Example: ferrite data sheet --fer2013 fer2013.csv --per-class 8 --out sheet.png
    Sheet(SheetArgs),
    /// Write the images as PNG files in OUT/<split>/<class>/.
    ///
    /// The result is a folder dataset that `--images OUT` reads back.
    ///
    /// Example: ferrite data export --fer2013 fer2013.csv --split PrivateTest --out fer2013-png
    Export {
        #[command(flatten)]
        data: DatasetArgs,
        /// Output folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Export only these splits (repeatable); all splits by default.
        #[arg(long, value_name = "NAME")]
        split: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct SheetArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// Faces per class.
    #[arg(long, default_value_t = 8, value_name = "N")]
    per_class: usize,
    /// Split to draw from (name or role: train, val, test); the first split by default.
    #[arg(long, value_name = "NAME")]
    split: Option<String>,
    /// Seed of the random pick of faces.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Show each face as training sees it: one random draw of the default augmentation.
    #[arg(long)]
    augmented: bool,
    /// Output PNG file.
    #[arg(long, value_name = "PNG")]
    out: PathBuf,
}

pub fn run(cmd: DataCommand) -> Result<i32> {
    match cmd {
        DataCommand::Stats { data, json } => stats(&data, json),
        DataCommand::Check { data, max_problems } => check(&data, max_problems),
        DataCommand::Sheet(args) => sheet(args),
        DataCommand::Export { data, out, split } => export(&data, &out, &split),
    }
}

/// Loads a dataset, printing the files a folder dataset could not use.
pub fn load(data: &DatasetArgs) -> Result<Dataset> {
    let ds = data.source().load()?;
    if !ds.skipped.is_empty() {
        eprintln!("warning: {} file(s) skipped:", ds.skipped.total);
        for p in &ds.skipped.kept {
            eprintln!("  {p}");
        }
        if ds.skipped.total > ds.skipped.kept.len() {
            eprintln!(
                "  ... and {} more",
                ds.skipped.total - ds.skipped.kept.len()
            );
        }
    }
    Ok(ds)
}

/// The split called `name` (or with that role: train, val, test), or an error listing them.
pub fn named_split<'a>(ds: &'a Dataset, name: &str) -> Result<&'a Split> {
    ds.split(name).with_context(|| {
        format!(
            "no split `{name}` in {} (it has: {})",
            ds.name,
            ds.split_names()
        )
    })
}

/// The split `--split NAME` names, or without it the test split (PrivateTest, FERPlus test,
/// a folder's `test`, or a folder's only split): what `eval` and `robustness` score.
pub fn scored_split<'a>(ds: &'a Dataset, name: Option<&str>) -> Result<&'a Split> {
    match name {
        Some(name) => named_split(ds, name),
        None => ds
            .split_by_role(ferrite_data::SplitRole::Test)
            .or(if ds.splits.len() == 1 {
                ds.splits.first()
            } else {
                None
            })
            .with_context(|| {
                format!(
                    "{} has no test split; choose one with --split ({})",
                    ds.name,
                    ds.split_names()
                )
            }),
    }
}

fn stats(data: &DatasetArgs, as_json: bool) -> Result<i32> {
    let start = Instant::now();
    let ds = load(data)?;
    let seconds = start.elapsed().as_secs_f64();
    let counts: Vec<Vec<usize>> = ds
        .splits
        .iter()
        .map(|s| s.samples.class_counts(ds.classes.len()))
        .collect();
    if as_json {
        let splits: serde_json::Map<String, serde_json::Value> = ds
            .splits
            .iter()
            .zip(&counts)
            .map(|(s, c)| {
                let classes: serde_json::Map<String, serde_json::Value> = ds
                    .classes
                    .iter()
                    .zip(c)
                    .map(|(name, n)| (name.clone(), json!(n)))
                    .collect();
                (
                    s.name.clone(),
                    json!({"role": s.role, "total": s.samples.len(), "classes": classes}),
                )
            })
            .collect();
        let out = json!({
            "dataset": ds.name,
            "classes": ds.classes,
            "splits": splits,
            "total": ds.total(),
            "skipped": ds.skipped.total,
            "load_seconds": seconds,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    let mut header = vec!["class".to_string()];
    header.extend(ds.splits.iter().map(|s| s.name.clone()));
    header.push("all".into());
    let mut table = crate::output::table(header);
    for (c, class) in ds.classes.iter().enumerate() {
        let mut row = vec![class.clone()];
        row.extend(counts.iter().map(|k| k[c].to_string()));
        row.push(counts.iter().map(|k| k[c]).sum::<usize>().to_string());
        table.add_row(row);
    }
    let mut total = vec!["total".to_string()];
    total.extend(ds.splits.iter().map(|s| s.samples.len().to_string()));
    total.push(ds.total().to_string());
    table.add_row(total);
    crate::output::align_numbers(&mut table);
    println!(
        "{}: {} classes, {} images (loaded in {:.2} s)",
        ds.name,
        ds.classes.len(),
        ds.total(),
        seconds
    );
    println!("{table}");
    Ok(0)
}

fn check(data: &DatasetArgs, cap: usize) -> Result<i32> {
    let report = ferrite_data::check::check(&data.source(), cap);
    for p in &report.problems.kept {
        println!("{p}");
    }
    let hidden = report.problems.total - report.problems.kept.len();
    if hidden > 0 {
        println!("... and {hidden} more (raise --max-problems to list them)");
    }
    if report.is_valid() {
        println!("ok: {} entries checked, no problems", report.entries);
        Ok(0)
    } else {
        println!(
            "invalid: {} entries checked, {} problem(s)",
            report.entries, report.problems.total
        );
        Ok(1)
    }
}

fn sheet(args: SheetArgs) -> Result<i32> {
    if args.per_class == 0 {
        bail!("--per-class must be at least 1");
    }
    let ds = load(&args.data)?;
    let split = match &args.split {
        Some(name) => named_split(&ds, name)?,
        None => &ds.splits[0],
    };
    let augment = args
        .augmented
        .then(ferrite_data::augment::AugmentConfig::default);
    let img = ferrite_data::sheet::contact_sheet(
        split,
        &ds.classes,
        args.per_class,
        args.seed,
        augment.as_ref(),
    );
    crate::output::save_png(&img, &args.out)?;
    println!(
        "wrote {} ({}x{}, split {})",
        args.out.display(),
        img.width(),
        img.height(),
        split.name
    );
    Ok(0)
}

fn export(data: &DatasetArgs, out: &std::path::Path, splits: &[String]) -> Result<i32> {
    let ds = load(data)?;
    // Names or roles (`test`) as the user gave them, resolved to the dataset's own names.
    let names = splits
        .iter()
        .map(|n| named_split(&ds, n).map(|s| s.name.clone()))
        .collect::<Result<Vec<_>>>()?;
    let n = ferrite_data::export::export_png(&ds, out, &names).map_err(anyhow::Error::msg)?;
    println!("wrote {n} PNG files under {}", out.display());
    Ok(0)
}
