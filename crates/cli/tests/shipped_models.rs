//! The committed models on the real test splits: a guard for every later change to data
//! loading, the networks, kernels or evaluation. Each must score at least its floor; the
//! floors are the accuracies measured when the model was committed (models/README.md),
//! printed beside the paper's figure.

mod common;

use common::*;
use serde_json::Value;

/// (model file, its floor, the paper's figure)
const FER2013: (&str, f64, f64) = ("models/fer2013.safetensors", FER2013_FLOOR, 0.6932);
/// PrivateTest accuracy of models/fer2013.safetensors without TTA, as measured.
const FER2013_FLOOR: f64 = 0.6818;

fn model(relative: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn accuracy(args: &[&str]) -> f64 {
    let json: Value = serde_json::from_str(&ferrite_ok(args)).unwrap();
    json["accuracy"].as_f64().unwrap()
}

#[test]
fn fer2013_model_holds_its_privatetest_accuracy() {
    let Some(csv) = fer2013() else { return };
    let (file, floor, paper) = FER2013;
    let path = model(file);
    let acc = accuracy(&[
        "eval",
        "--model",
        path.to_str().unwrap(),
        "--fer2013",
        csv.to_str().unwrap(),
        "--json",
    ]);
    eprintln!("{file}: PrivateTest {acc:.4} (floor {floor:.4}, paper {paper:.4})");
    assert!(acc >= floor, "{file}: PrivateTest {acc:.4} < {floor:.4}");
}
