//! `ferrite eval`: score a model on a labelled split.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, ValueEnum};
use ferrite_model::predict::Tta;
use serde_json::json;

use crate::dataset_args::DatasetArgs;
use crate::model_args::ScoredModel;
use crate::output::{align_numbers, confusion_table, table};

/// Score a model on a labelled split (accuracy, macro-F1, confusion matrix).
///
/// Prints accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix. Classes are matched by name (a FERPlus model can be scored on
/// FER2013 or on a folder of CK+-style class names); dataset classes the model does not
/// know are reported and left out.
///
/// Example: ferrite eval --model models/fer2013.safetensors --fer2013 fer2013.csv.gz --tta flip
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    scored: ScoredModel,
    #[command(flatten)]
    data: DatasetArgs,
    /// Split to score [default: the test split: PrivateTest, FERPlus test, or a folder's test].
    #[arg(long, value_name = "NAME")]
    split: Option<String>,
    /// Test-time augmentation.
    #[arg(long, value_enum, default_value_t = TtaArg::None)]
    tta: TtaArg,
    /// Also score this model (or comma-separated ensemble) on the same faces and test
    /// whether the two differ: McNemar's exact test on the faces only one gets right.
    #[arg(long, value_name = "FILE[,FILE...]", value_delimiter = ',')]
    against: Vec<PathBuf>,
    /// Also draw the confusion matrix to this PNG.
    #[arg(long, value_name = "PNG")]
    confusion: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TtaArg {
    None,
    /// Average with the mirrored face.
    Flip,
    /// Average over the face, its mirror and 4 shifted copies.
    Crops,
}

pub fn run(args: EvalArgs) -> Result<i32> {
    let (models, device) = args.scored.load()?;
    let meta = models.meta();
    let name = args.scored.name();
    let ds = crate::cmd::data::load(&args.data)?;
    let split = crate::cmd::data::scored_split(&ds, args.split.as_deref())?;
    let tta = match args.tta {
        TtaArg::None => Tta::None,
        TtaArg::Flip => Tta::Flip,
        TtaArg::Crops => Tta::Crops,
    };
    let start = Instant::now();
    let report =
        ferrite_train::score::score(&models, &split.samples, &ds.classes, tta, &device, |_| {});
    let seconds = start.elapsed().as_secs_f64();
    let against = if args.against.is_empty() {
        None
    } else {
        let other = ferrite_model::Ensemble::load(&args.against, &device)?;
        let theirs =
            ferrite_train::score::score(&other, &split.samples, &ds.classes, tta, &device, |_| {});
        if theirs.correct.len() != report.correct.len() {
            anyhow::bail!(
                "--against scores {} faces and --model {}: the two must know the same classes",
                theirs.correct.len(),
                report.correct.len()
            );
        }
        let test = ferrite_train::score::mcnemar(&report.correct, &theirs.correct);
        Some((
            ferrite_model::ensemble::describe(&args.against),
            theirs.accuracy,
            test,
        ))
    };
    if report.n == 0 {
        anyhow::bail!(
            "none of the classes of {} is known to the model ({})",
            ds.name,
            meta.classes.join(", ")
        );
    }
    if let Some(png) = &args.confusion {
        let title = format!(
            "{} on {} {} (accuracy {:.2} %)",
            meta.arch.arch,
            ds.name,
            split.name,
            report.accuracy * 100.0
        );
        ferrite_train::plot::confusion(&report.confusion.counts, &report.classes, &title, png)
            .map_err(anyhow::Error::msg)?;
    }
    if args.json {
        let per_class: serde_json::Map<String, serde_json::Value> = report
            .classes
            .iter()
            .zip(&report.per_class)
            .map(|(c, s)| (c.clone(), json!(s)))
            .collect();
        let out = json!({
            "model": name,
            "models": models.len(),
            "dataset": ds.name,
            "split": split.name,
            "tta": format!("{:?}", args.tta).to_lowercase(),
            "accuracy": report.accuracy,
            "macro_f1": report.macro_f1,
            "per_class": per_class,
            "classes": report.classes,
            "confusion": report.confusion.counts,
            "n": report.n,
            "left_out": report.left_out,
            "seconds": seconds,
            "against": against.as_ref().map(|(name, accuracy, test)| json!({
                "model": name,
                "accuracy": accuracy,
                "only_model_right": test.only_first,
                "only_against_right": test.only_second,
                "mcnemar_p": test.p_value,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    println!(
        "{} ({}{}) on {} {}: {} images, TTA {:?}, {:.1} s",
        name,
        meta.arch.arch,
        if models.len() > 1 {
            format!(", an ensemble of {}", models.len())
        } else {
            String::new()
        },
        ds.name,
        split.name,
        report.n,
        args.tta,
        seconds
    );
    println!(
        "accuracy {:.2} %   macro-F1 {:.4}\n",
        report.accuracy * 100.0,
        report.macro_f1
    );
    if let Some((name, accuracy, test)) = &against {
        println!(
            "against {name}: accuracy {:.2} %; right only with --model: {}, only with --against: {}; McNemar exact p = {}{}\n",
            accuracy * 100.0,
            test.only_first,
            test.only_second,
            if test.p_value < 1e-3 {
                format!("{:.1e}", test.p_value)
            } else {
                format!("{:.4}", test.p_value)
            },
            if test.p_value < 0.05 {
                " (a real difference at 5 %)"
            } else {
                " (within chance at 5 %)"
            }
        );
    }
    let mut t = table(vec![
        "class".into(),
        "precision".into(),
        "recall".into(),
        "F1".into(),
        "support".into(),
    ]);
    for (c, s) in report.classes.iter().zip(&report.per_class) {
        t.add_row(vec![
            c.clone(),
            format!("{:.3}", s.precision),
            format!("{:.3}", s.recall),
            format!("{:.3}", s.f1),
            s.support.to_string(),
        ]);
    }
    align_numbers(&mut t);
    println!("{t}\n");
    println!(
        "{}",
        confusion_table(&report.classes, &report.confusion.counts)
    );
    for (class, n) in &report.left_out {
        println!("left out: {n} images of `{class}`, a class the model does not know");
    }
    Ok(0)
}
