//! How a run starts: resumed mid-epoch it ends with exactly the weights of an uninterrupted
//! run; a new run refuses a used folder; fine-tuning keeps its starting model when no epoch
//! beats it.

use std::path::Path;
use std::sync::Arc;

use ferrite_data::face::PIXELS;
use ferrite_data::mix::{MixConfig, MixKind};
use ferrite_data::{Origin, Samples};
use ferrite_model::ArchKind;
use ferrite_train::trainer::{BEST, CHECKPOINT, METRICS};
use ferrite_train::{Log, Outcome, Start, TrainConfig, TrainData, train};

/// Faces whose class is visible: a bright band at a class-specific height.
fn synthetic(n: usize, classes: usize) -> Samples {
    let mut s = Samples::default();
    for i in 0..n {
        let c = i % classes;
        let plane: Vec<u8> = (0..PIXELS)
            .map(|p| {
                if (p / 48) / 16 == c {
                    220
                } else {
                    ((p * 31 + i * 7) % 60) as u8
                }
            })
            .collect();
        s.push(&plane, c as u32, Origin::Row(i));
    }
    s
}

fn data() -> TrainData {
    TrainData {
        dataset: "synthetic".into(),
        classes: vec!["a".into(), "b".into(), "c".into()],
        train: Arc::new(synthetic(96, 3)),
        val: Arc::new(synthetic(30, 3)),
        val_name: "val".into(),
    }
}

fn config() -> TrainConfig {
    TrainConfig {
        arch: ArchKind::MiniXception,
        epochs: 2,
        batch_size: 16,
        seed: 7,
        ..TrainConfig::default()
    }
}

/// burn's CPU backend has one global RNG: tests that train must not run at the same time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The tensor data of a model file (its header's metadata order may differ run to run).
fn weights(dir: &Path) -> Vec<u8> {
    let bytes = std::fs::read(dir.join(BEST)).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header..].to_vec()
}

#[test]
fn resume_mid_epoch_reproduces_the_uninterrupted_run() {
    resumes_exactly(config());
}

#[test]
fn resume_mid_epoch_reproduces_the_uninterrupted_run_with_cutmix() {
    // Every batch mixed: the mix of each step must not depend on where the run started.
    let mix = MixConfig {
        kind: MixKind::Cutmix,
        alpha: 1.0,
        prob: 1.0,
    };
    resumes_exactly(TrainConfig {
        mix: Some(mix),
        ..config()
    });
}

#[test]
fn resume_mid_epoch_reproduces_the_uninterrupted_run_with_sam() {
    // SAM's second pass draws its own dropout: it too must depend only on the step.
    resumes_exactly(TrainConfig {
        sam: Some(0.05),
        ..config()
    });
}

fn resumes_exactly(config: TrainConfig) {
    let config = || config.clone();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = ferrite_model::device::parse("cpu").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));

    assert_eq!(
        train(
            &data(),
            config(),
            &a,
            Start::Scratch,
            &device,
            Log::Epochs,
            &|_| false
        )
        .unwrap(),
        Outcome::Finished
    );

    // Stop after step 8 of 12 (epoch 2, batch 2), then resume.
    assert_eq!(
        train(
            &data(),
            config(),
            &b,
            Start::Scratch,
            &device,
            Log::Epochs,
            &|step| step == 8
        )
        .unwrap(),
        Outcome::Interrupted
    );
    let lines = std::fs::read_to_string(b.join(METRICS))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, 1, "one finished epoch logged before the stop");
    assert!(b.join(CHECKPOINT).exists());
    assert_eq!(
        train(
            &data(),
            config(),
            &b,
            Start::Resume,
            &device,
            Log::Epochs,
            &|_| false
        )
        .unwrap(),
        Outcome::Finished
    );

    let (ma, mb) = (
        std::fs::read_to_string(a.join(METRICS)).unwrap(),
        std::fs::read_to_string(b.join(METRICS)).unwrap(),
    );
    let losses = |m: &str| {
        m.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["val_loss"]
                    .as_f64()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&ma), losses(&mb));
    let (wa, wb) = (weights(&a), weights(&b));
    let first_difference = wa.iter().zip(&wb).position(|(x, y)| x != y);
    assert!(
        wa.len() == wb.len() && first_difference.is_none(),
        "resumed run ends with different weights (sizes {} and {}, first difference at byte {first_difference:?})",
        wa.len(),
        wb.len()
    );
}

#[test]
fn a_new_run_refuses_an_existing_run_folder() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = ferrite_model::device::parse("cpu").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        ..config()
    };
    train(
        &data(),
        cfg.clone(),
        tmp.path(),
        Start::Scratch,
        &device,
        Log::Epochs,
        &|_| false,
    )
    .unwrap();
    let err = train(
        &data(),
        cfg,
        tmp.path(),
        Start::Scratch,
        &device,
        Log::Epochs,
        &|_| false,
    )
    .unwrap_err();
    assert!(err.contains("already holds a run"), "{err}");
}

#[test]
fn fine_tuning_keeps_the_starting_model_unless_an_epoch_beats_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = ferrite_model::device::parse("cpu").unwrap();
    let train_device = device.clone().autodiff();
    let tmp = tempfile::tempdir().unwrap();
    let fine_tune = |net, lr: f64, out: &Path| {
        let cfg = TrainConfig {
            epochs: 1,
            lr,
            warmup_epochs: 0.0,
            ..config()
        };
        let arch = ferrite_model::ArchConfig::new(ArchKind::MiniXception, 3);
        let start = Start::From(arch, net);
        train(&data(), cfg, out, start, &device, Log::Epochs, &|_| false).unwrap();
        ferrite_model::file::load(&out.join(BEST), &device)
            .unwrap()
            .1
    };

    // From an untrained network, one epoch on these easy faces beats the start.
    let untrained = ferrite_model::ArchConfig::new(ArchKind::MiniXception, 3).init(&train_device);
    let learned = fine_tune(untrained, 0.05, &tmp.path().join("learned"));
    assert_eq!(learned.epochs, 1);

    // From that model, a step size that wrecks it cannot beat it: the start is kept.
    let (trained, _) =
        ferrite_model::file::load(&tmp.path().join("learned").join(BEST), &train_device).unwrap();
    let wrecked = fine_tune(trained, 1e4, &tmp.path().join("wrecked"));
    assert_eq!(
        wrecked.epochs, 0,
        "the starting model should have been kept"
    );
    assert_eq!(wrecked.val_accuracy, learned.val_accuracy);
    assert_eq!(
        weights(&tmp.path().join("wrecked")),
        weights(&tmp.path().join("learned"))
    );
}
