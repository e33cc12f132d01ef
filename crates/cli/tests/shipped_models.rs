//! The committed models on the real test splits: a guard for every later change to data
//! loading, the networks, kernels or evaluation. Each must score at least its floor (the
//! accuracy measured when the model was committed, models/README.md, or the paper's figure
//! where that is lower) and the paper's figure in the TTA mode chosen on PublicTest.

mod common;

use common::*;
use serde_json::Value;

/// PrivateTest accuracy of models/fer2013.safetensors without TTA: measured 69.91 % (2,509
/// of 3,589 faces), less three faces of slack for rounding changes in the kernels; above
/// the paper's 69.32 %. With the TTA chosen on PublicTest (crops: 70.41 %) it is checked
/// against the paper's figure.
const FER2013_FLOOR: f64 = 0.6982;
const FER2013_PAPER: f64 = 0.6932;
/// FERPlus test accuracy (majority vote) of models/ferplus.safetensors without TTA: measured
/// 86.33 % (2,722 of 3,153 faces), less three faces. With the TTA chosen on PublicTest
/// (crops: 87.19 %) it is checked against the paper's 85.35 %.
const FERPLUS_FLOOR: f64 = 0.8623;
const FERPLUS_PAPER: f64 = 0.8535;
/// The ensemble of models/fer2013-standard.safetensors and models/fer2013-edge.safetensors
/// without TTA: 71.41 % (2,563 faces) when committed, less three faces.
const ENSEMBLE_FLOOR: f64 = 0.7132;

fn model(relative: &str) -> std::path::PathBuf {
    manifest_dir().join("../..").join(relative)
}

/// Test-split accuracy of a committed model (or `a,b` ensemble), with `tta` (none, flip, crops).
fn accuracy(file: &str, dataset: &[&str], tta: &str) -> f64 {
    let path = file
        .split(',')
        .map(|f| model(f).to_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut args = vec!["eval", "--model", &path, "--json", "--tta", tta];
    args.extend(dataset);
    let json: Value = serde_json::from_str(&ferrite_ok(&args)).unwrap();
    json["accuracy"].as_f64().unwrap()
}

/// The conditions of `ferrite robustness` for a committed model on the test split.
fn robustness(file: &str, dataset: &[&str]) -> Value {
    let path = model(file);
    let mut args = vec![
        "robustness",
        "--model",
        path.to_str().unwrap(),
        "--split",
        "PrivateTest",
        "--json",
    ];
    args.extend(dataset);
    serde_json::from_str(&ferrite_ok(&args)).unwrap()
}

/// Checks a robustness report: accuracy as given at least `floor`, and the loss under each
/// change, in points, at most what it was when the model was committed (`drops`) plus half a
/// point of slack.
fn assert_robust(file: &str, json: &Value, floor: f64, drops: &[(&str, f64)]) {
    let conditions = json["conditions"].as_array().unwrap();
    let find = |name: &str| {
        conditions
            .iter()
            .find(|c| c["condition"] == name)
            .unwrap_or_else(|| panic!("no condition {name}: {json}"))
    };
    let plain = find("as given")["accuracy"].as_f64().unwrap();
    eprintln!("{file}: test split {plain:.4} (floor {floor:.4})");
    assert!(plain >= floor, "{file}: test split {plain:.4} < {floor:.4}");
    for &(name, measured) in drops {
        let drop = -100.0 * find(name)["drop"].as_f64().unwrap();
        eprintln!("{file}: {name}: drop {drop:.2} points (measured {measured})");
        assert!(
            drop <= measured + 0.5,
            "{file}: {name} costs {drop:.2} points, {measured} when committed"
        );
    }
}

/// The shipped FER2013 model (distilled from an ensemble and trained for any framing, with
/// edge, black or grey fill) keeps its accuracy on FER2013's own crops and its robustness to
/// other framings and cameras.
#[test]
fn fer2013_model_holds_its_accuracy_and_its_robustness() {
    let Some(csv) = fer2013() else { return };
    let file = "models/fer2013.safetensors";
    let dataset = ["--fer2013", csv.to_str().unwrap()];
    let crops = accuracy(file, &dataset, "crops");
    eprintln!("{file}: PrivateTest with TTA crops {crops:.4} (paper {FER2013_PAPER:.4})");
    assert!(
        crops >= FER2013_PAPER,
        "{file}: PrivateTest with TTA crops {crops:.4} < the paper's {FER2013_PAPER:.4}"
    );
    // models/fer2013-standard.safetensors loses 1.2, 3.1, 9.5, 10.8, 11.9 and 15.0 points
    // under the same changes.
    assert_robust(
        file,
        &robustness(file, &dataset),
        FER2013_FLOOR,
        &[
            ("shift 5 px", 0.28),
            ("tight 80 %", 1.06),
            ("tight 70 %", 3.62),
            ("loose 10 px", 4.24),
            ("blur σ 1", 1.50),
            ("JPEG q 20", 3.43),
        ],
    );
}

/// The best FER2013 ensemble on PublicTest: models/fer2013-standard.safetensors (trained
/// without framing augmentation) and models/fer2013-edge.safetensors (the recipe of
/// fer2013.safetensors with edge fill only; the shipped FER2013 model until 2026-12-07).
#[test]
fn fer2013_ensemble_holds_its_privatetest_accuracy() {
    let Some(csv) = fer2013() else { return };
    let pair = "models/fer2013-standard.safetensors,models/fer2013-edge.safetensors";
    let acc = accuracy(pair, &["--fer2013", csv.to_str().unwrap()], "none");
    eprintln!("{pair}: PrivateTest {acc:.4} (floor {ENSEMBLE_FLOOR:.4})");
    assert!(
        acc >= ENSEMBLE_FLOOR,
        "{pair}: PrivateTest {acc:.4} < {ENSEMBLE_FLOOR:.4}"
    );
}

/// The shipped FERPlus model (distilled from the one before it, now
/// models/ferplus-standard.safetensors, and trained for any framing) keeps its test accuracy
/// and its robustness.
#[test]
fn ferplus_model_holds_its_accuracy_and_its_robustness() {
    let Some((csv, votes)) = ferplus() else {
        return;
    };
    let file = "models/ferplus.safetensors";
    let dataset = [
        "--fer2013",
        csv.to_str().unwrap(),
        "--ferplus",
        votes.to_str().unwrap(),
    ];
    let crops = accuracy(file, &dataset, "crops");
    eprintln!("{file}: FERPlus test with TTA crops {crops:.4} (paper {FERPLUS_PAPER:.4})");
    assert!(
        crops >= FERPLUS_PAPER,
        "{file}: FERPlus test with TTA crops {crops:.4} < the paper's {FERPLUS_PAPER:.4}"
    );
    // models/ferplus-standard.safetensors loses -0.3, 0.9, 6.3, 6.4, 8.0 and 12.4 points under
    // the same changes.
    assert_robust(
        file,
        &robustness(file, &dataset),
        FERPLUS_FLOOR,
        &[
            ("shift 5 px", 0.0),
            ("tight 80 %", 0.95),
            ("tight 70 %", 2.60),
            ("loose 10 px", 2.89),
            ("blur σ 1", 1.11),
            ("JPEG q 20", 3.46),
        ],
    );
}

#[test]
fn the_builtin_model_is_the_ferplus_model() {
    let builtin = std::fs::read(model("models/builtin.safetensors")).unwrap();
    let ferplus = std::fs::read(model("models/ferplus.safetensors")).unwrap();
    assert!(
        builtin == ferplus,
        "models/builtin.safetensors is not models/ferplus.safetensors"
    );
}

#[test]
fn eval_against_another_model_counts_the_faces_only_one_gets_right() {
    let Some(csv) = fer2013() else { return };
    let (fer2013, ferplus) = (
        model("models/fer2013.safetensors"),
        model("models/ferplus.safetensors"),
    );
    let out = ferrite_ok(&[
        "eval",
        "--model",
        fer2013.to_str().unwrap(),
        "--against",
        ferplus.to_str().unwrap(),
        "--fer2013",
        csv.to_str().unwrap(),
        "--split",
        "PublicTest",
        "--json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    let against = &json["against"];
    let (only_model, only_against) = (
        against["only_model_right"].as_f64().unwrap(),
        against["only_against_right"].as_f64().unwrap(),
    );
    let n = json["n"].as_f64().unwrap();
    // The two accuracies differ by exactly the discordant faces.
    let gap = json["accuracy"].as_f64().unwrap() - against["accuracy"].as_f64().unwrap();
    assert!(
        (gap - (only_model - only_against) / n).abs() < 1e-9,
        "{json}"
    );
    assert!(only_model > 50.0 && only_against > 50.0, "{against}");
    let p = against["mcnemar_p"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p), "{p}");
}
