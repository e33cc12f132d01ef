//! Training and evaluation end to end on real FER2013 images.

mod common;

use common::*;
use serde_json::Value;

fn last_metrics(run: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// `ferrite train` on 256 training and 128 validation images, without augmentation.
fn train_small(csv: &str, extra: &[&str]) -> std::process::Output {
    small("train", csv, extra)
}

/// `ferrite COMMAND` (train or finetune) on 256 training and 128 validation images, without
/// augmentation.
fn small(command: &str, csv: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        command,
        "--fer2013",
        csv,
        "--limit",
        "256",
        "--val-limit",
        "128",
        "--no-augment",
    ];
    args.extend_from_slice(extra);
    ferrite(&args)
}

#[test]
fn overfits_256_real_images() {
    let Some(csv) = fer2013() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    #[rustfmt::skip]
    ferrite_ok(&[
        "train", "--fer2013", csv.to_str().unwrap(), "--arch", "ferrite", "--limit", "256", "--val-limit", "200",
        "--epochs", "12", "--no-augment", "--label-smoothing", "0", "--dropout", "0", "--optimizer", "adamw",
        "--lr", "0.001", "--schedule", "cosine", "--warmup", "0", "--out", run.to_str().unwrap(),
    ]);
    let m = last_metrics(&run);
    assert!(m["train_accuracy"].as_f64().unwrap() > 0.95, "{m}");
    for file in [
        "config.json",
        "metrics.jsonl",
        "curves.png",
        "last.ckpt",
        "best.safetensors",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
}

#[test]
fn short_run_beats_the_majority_baseline_on_publictest() {
    let Some(csv) = fer2013() else { return };
    let csv = csv.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    #[rustfmt::skip]
    ferrite_ok(&[
        "train", "--fer2013", csv, "--limit", "4000", "--val-limit", "500", "--epochs", "3", "--no-augment",
        "--optimizer", "adamw", "--lr", "0.001", "--schedule", "cosine", "--warmup", "0.3", "--out", run.to_str().unwrap(),
    ]);
    let model = run.join("best.safetensors");
    let out = ferrite_ok(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--fer2013",
        csv,
        "--split",
        "PublicTest",
        "--json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["n"], 3589);
    // Always answering the largest class (Happy, 895 of 3589) scores 24.9 %.
    let counts = &json["per_class"];
    let majority = counts
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["support"].as_u64().unwrap())
        .max()
        .unwrap() as f64
        / 3589.0;
    let accuracy = json["accuracy"].as_f64().unwrap();
    assert!(
        accuracy > majority + 0.02,
        "accuracy {accuracy} vs majority baseline {majority}"
    );
}

#[test]
fn distillation_mixes_the_teachers_probabilities_into_the_targets_and_keeps_them_on_resume() {
    let Some(csv) = fer2013() else { return };
    let csv = csv.to_str().unwrap();
    let models = manifest_dir().join("../../models");
    let teacher = models.join("fer2013.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let train = |extra: &[&str]| train_small(csv, extra);
    let out = train(&[
        "--epochs",
        "1",
        "--teacher",
        teacher.to_str().unwrap(),
        "--teacher-weight",
        "0.7",
        "--out",
        run.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    // The shipped model knows these training images: it agrees with most labels.
    let agree: f64 = stderr
        .split("agrees with ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no teacher line: {stderr}"));
    assert!((60.0..100.0).contains(&agree), "{stderr}");
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["teacher_weight"], 0.7);
    assert!(
        config["train"]["teacher"][0]
            .as_str()
            .unwrap()
            .ends_with("fer2013.safetensors")
    );
    // Resumed without --teacher: the run's own teacher again.
    let out = train(&["--epochs", "2", "--resume", run.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("fer2013.safetensors: targets for 256"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    // A teacher of other classes (FERPlus's 8) is refused before training.
    let other = dir.path().join("other");
    let ferplus = models.join("ferplus.safetensors");
    let out = train(&[
        "--epochs",
        "1",
        "--teacher",
        ferplus.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("must name the dataset's classes"),
        "{stderr}"
    );
}

#[test]
fn weight_averaging_saves_the_mean_of_the_last_epochs_and_survives_resume() {
    let Some(csv) = fer2013() else { return };
    let csv = csv.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let train = |extra: &[&str]| {
        let out = train_small(csv, extra);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code(), stderr)
    };
    let info = |model: &std::path::Path| -> Value {
        let out = ferrite_ok(&["info", "--model", model.to_str().unwrap(), "--json"]);
        serde_json::from_str::<Value>(&out).unwrap()["model"].clone()
    };

    // Asked for at the start: epochs 2 and 3 of 3 are averaged.
    let run = dir.path().join("run");
    let run_arg = run.to_str().unwrap();
    let (code, stderr) = train(&["--epochs", "3", "--average", "2", "--out", run_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("weight average of the last 2 epochs"),
        "{stderr}"
    );
    let average = run.join("average.safetensors");
    let meta = info(&average);
    assert_eq!(meta["averaged_epochs"], 2, "{meta}");
    assert_eq!(meta["epochs"], 3, "{meta}");
    assert!(meta["val_accuracy"].as_f64().unwrap() > 0.0, "{meta}");
    // A model of its own: not the selected epoch's, nor a copy of the last.
    let best = std::fs::read(run.join("best.safetensors")).unwrap();
    assert_ne!(std::fs::read(&average).unwrap(), best);
    assert!(
        info(&run.join("best.safetensors"))
            .get("averaged_epochs")
            .is_none()
    );

    // Resumed as it is, the checkpoint's average is scored again; its length and window
    // are fixed once averaging has begun.
    let (code, stderr) = train(&["--resume", run_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("weight average of the last 2 epochs"),
        "{stderr}"
    );
    for change in [&["--epochs", "4"][..], &["--average", "3"]] {
        let mut args = change.to_vec();
        args.extend(["--resume", run_arg]);
        let (code, stderr) = train(&args);
        assert_eq!(code, Some(1), "{change:?}: {stderr}");
        assert!(stderr.contains("cannot change its length"), "{stderr}");
    }

    // Asked for on resume, before it begins: a 2-epoch run extended to 4, averaging 3 and 4.
    let late = dir.path().join("late");
    let late_arg = late.to_str().unwrap();
    let (code, stderr) = train(&["--epochs", "2", "--out", late_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!late.join("average.safetensors").exists());
    let (code, stderr) = train(&["--epochs", "4", "--average", "2", "--resume", late_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        info(&late.join("average.safetensors"))["averaged_epochs"],
        2
    );
    // Resumed on other data (FERPlus's labels for the same faces), a run refuses to go on.
    if let Some((_, votes)) = ferplus() {
        let out = train(&["--ferplus", votes.to_str().unwrap(), "--resume", late_arg]);
        assert_eq!(out.0, Some(1), "{}", out.1);
        assert!(
            out.1
                .contains("trained on dataset = \"FER2013\", but the data given now has \"FERPlus (majority)\""),
            "{}",
            out.1
        );
    }
    // Resumed without --epochs, a run keeps its own length (not the default of 60).
    let (code, stderr) = train(&["--resume", late_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    let metrics = std::fs::read_to_string(late.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 4);
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(late.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["epochs"], 4);
    assert_eq!(config["train"]["average_epochs"], 2);

    let (code, stderr) = train(&[
        "--epochs",
        "2",
        "--average",
        "3",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--average 3 is more than the run's 2 epochs"),
        "{stderr}"
    );
}

#[test]
fn finetuning_averages_weights_at_a_constant_rate_and_resumes_with_its_own_length() {
    // SWA from a trained model: the built-in model, three more epochs at a constant rate,
    // the last two averaged.
    let Some(csv) = fer2013() else { return };
    let csv = csv.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("swa");
    let run_arg = run.to_str().unwrap();
    let finetune = |extra: &[&str]| {
        let out = small("finetune", csv, extra);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code(), stderr)
    };
    let (code, stderr) = finetune(&[
        "--epochs",
        "3",
        "--schedule",
        "constant",
        "--warmup",
        "0",
        "--lr",
        "0.002",
        "--average",
        "2",
        "--out",
        run_arg,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let rates: Vec<f64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["lr"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(rates, vec![0.002; 3], "{metrics}");
    let out = ferrite_ok(&[
        "info",
        "--model",
        run.join("average.safetensors").to_str().unwrap(),
        "--json",
    ]);
    let meta = serde_json::from_str::<Value>(&out).unwrap()["model"].clone();
    assert_eq!(meta["averaged_epochs"], 2, "{meta}");

    // Resumed without --epochs, a fine-tuning run keeps its own length (not finetune's
    // default of 30) and its averaging.
    let (code, stderr) = finetune(&["--resume", run_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("weight average of the last 2 epochs"),
        "{stderr}"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
}
