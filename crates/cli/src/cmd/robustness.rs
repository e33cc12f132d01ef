//! `ferrite robustness`: how a model's accuracy holds when faces are framed or captured
//! differently from its training data.

use anyhow::Result;
use clap::Args;
use ferrite_data::Samples;
use ferrite_data::perturb::{self, Perturbation};
use ferrite_model::predict::Tta;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::dataset_args::DatasetArgs;
use crate::model_args::ScoredModel;
use crate::output::{align_numbers, table};

/// Score a model on a split under fixed framing and camera changes.
///
/// Every face of the split is scored as given, then under each change in turn: shifted by
/// 3 and 5 pixels, tighter crops (the central 90, 80, 70 % enlarged), looser crops (5 and 10
/// gray pixels added around, shrunk back), turned by 10 and 20 degrees, blurred, darker,
/// flatter, JPEG-compressed. The changes are fixed (directions chosen by each face's index,
/// not at random), so reports of different models compare face for face. Prints accuracy
/// and its drop from "as given" per change, without test-time augmentation.
///
/// Example: ferrite robustness --model models/fer2013.safetensors --fer2013 fer2013.csv.gz --split PublicTest
#[derive(Debug, Args)]
pub struct RobustnessArgs {
    #[command(flatten)]
    scored: ScoredModel,
    #[command(flatten)]
    data: DatasetArgs,
    /// Split to score [default: the test split]. Choose on the validation split, report on
    /// the test split.
    #[arg(long, value_name = "NAME")]
    split: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: RobustnessArgs) -> Result<i32> {
    let (models, device) = args.scored.load()?;
    let ds = crate::cmd::data::load(&args.data)?;
    let split = crate::cmd::data::scored_split(&ds, args.split.as_deref())?;
    let conditions = perturb::standard_set();
    let bar = if args.json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(conditions.len() as u64).with_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed} < {eta}]")
                .expect("valid template"),
        )
    };
    let mut rows = Vec::new();
    for (name, p) in &conditions {
        bar.set_message(*name);
        let samples = perturbed(&split.samples, *p);
        let report =
            ferrite_train::score::score(&models, &samples, &ds.classes, Tta::None, &device, |_| {});
        if report.n == 0 {
            anyhow::bail!("none of the classes of {} is known to the model", ds.name);
        }
        rows.push((*name, report.accuracy, report.macro_f1));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let base = rows[0].1;
    if args.json {
        let out = json!({
            "model": args.scored.name(),
            "dataset": ds.name,
            "split": split.name,
            "conditions": rows.iter().map(|(name, acc, f1)| json!({
                "condition": name, "accuracy": acc, "drop": acc - base, "macro_f1": f1,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    println!(
        "{} ({}) on {} {}: {} faces, no TTA",
        args.scored.name(),
        models.meta().arch.arch,
        ds.name,
        split.name,
        split.samples.len()
    );
    let mut t = table(vec![
        "condition".into(),
        "accuracy %".into(),
        "drop".into(),
        "macro-F1".into(),
    ]);
    for (name, acc, f1) in &rows {
        t.add_row(vec![
            name.to_string(),
            format!("{:.2}", acc * 100.0),
            format!("{:+.2}", (acc - base) * 100.0),
            format!("{f1:.3}"),
        ]);
    }
    align_numbers(&mut t);
    println!("{t}");
    Ok(0)
}

/// The samples with every face changed by `p` (labels and soft targets kept).
fn perturbed(samples: &Samples, p: Perturbation) -> Samples {
    let mut out = samples.clone();
    out.map_images(|i, plane| perturb::apply(plane, p, i));
    out
}
