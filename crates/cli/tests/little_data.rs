//! Little data, end to end: a small folder of faces made at test time from FER2013 (never
//! stored in the repository), fine-tuned against trained from scratch, and cross-validated
//! with groups.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use ferrite_data::{DataSource, SplitRole};
use serde_json::Value;

/// FER2013 classes and the CK+-like names the folder uses for them.
const CLASSES: [(u32, &str); 4] = [
    (0, "anger"),
    (3, "happiness"),
    (4, "sadness"),
    (5, "surprise"),
];

/// A folder dataset DIR/{train,val,test}/<class>/S<person>_<n>.png with `train` and `val`
/// images per class from PublicTest and `test` per class from PrivateTest: faces the
/// built-in model (trained on FER2013 Training) has not seen. FER2013 has no person ids;
/// every 3 consecutive images of a class are given one made-up "person".
fn make_folder(csv: &Path, dir: &Path, train: usize, val: usize, test: usize) {
    let ds = DataSource::Fer2013 {
        csv: csv.to_path_buf(),
    }
    .load()
    .unwrap();
    let public = &ds.split("PublicTest").unwrap().samples;
    let private = &ds.split_by_role(SplitRole::Test).unwrap().samples;
    for (label, name) in CLASSES {
        let of = |s: &ferrite_data::Samples| -> Vec<usize> {
            (0..s.len()).filter(|&i| s.label(i) == label).collect()
        };
        let (pub_idx, priv_idx) = (of(public), of(private));
        let parts = [
            ("train", public, &pub_idx[..train]),
            ("val", public, &pub_idx[train..train + val]),
            ("test", private, &priv_idx[..test]),
        ];
        for (split, samples, idx) in parts {
            let folder = dir.join(split).join(name);
            std::fs::create_dir_all(&folder).unwrap();
            for (n, &i) in idx.iter().enumerate() {
                let offset = match split {
                    "train" => 0,
                    "val" => 300,
                    _ => 600,
                };
                let person = format!("S{}{:03}", label, n / 3 + offset);
                ferrite_data::face::plane_to_image(samples.image(i))
                    .save(folder.join(format!("{person}_{n:03}.png")))
                    .unwrap();
            }
        }
    }
}

fn test_accuracy(model: &Path, dir: &Path) -> f64 {
    let out = ferrite_ok(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--images",
        dir.to_str().unwrap(),
        "--split",
        "test",
        "--json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["n"], 4 * 100);
    json["accuracy"].as_f64().unwrap()
}

#[test]
fn fine_tuning_50_images_per_class_beats_training_from_scratch_on_them() {
    let Some(csv) = fer2013() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("faces");
    make_folder(&csv, &data, 50, 20, 100);
    let (tuned, scratch) = (tmp.path().join("tuned"), tmp.path().join("scratch"));
    let common = [
        "--images",
        data.to_str().unwrap(),
        "--epochs",
        "8",
        "--seed",
        "1",
    ];
    let out = ferrite(
        &[
            &["finetune", "--out", tuned.to_str().unwrap()][..],
            &common[..],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    // All four folder classes are FER2013 classes under other names: all rows are kept.
    assert!(
        log.contains("keeps 4 [anger, happiness, sadness, surprise], learns 0 new"),
        "{log}"
    );
    ferrite_ok(
        &[
            &["train", "--out", scratch.to_str().unwrap()][..],
            &common[..],
        ]
        .concat(),
    );

    let meta: Value = serde_json::from_str(&ferrite_ok(&[
        "info",
        "--model",
        tuned.join("best.safetensors").to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        meta["model"]["classes"],
        serde_json::json!(["anger", "happiness", "sadness", "surprise"])
    );
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(tuned.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["from"], "built-in");

    let (a_tuned, a_scratch) = (
        test_accuracy(&tuned.join("best.safetensors"), &data),
        test_accuracy(&scratch.join("best.safetensors"), &data),
    );
    eprintln!("test accuracy: fine-tuned {a_tuned:.4}, from scratch {a_scratch:.4}");
    assert!(
        a_tuned > a_scratch + 0.10,
        "fine-tuned {a_tuned:.4} vs scratch {a_scratch:.4}"
    );
}

#[test]
fn cross_validation_keeps_people_apart_and_classes_even() {
    let Some(csv) = fer2013() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("faces");
    make_folder(&csv, &data, 24, 6, 15);
    let runs = tmp.path().join("cv");
    #[rustfmt::skip]
    let out = ferrite_ok(&[
        "cv", "--images", data.to_str().unwrap(), "--folds", "3", "--group-regex", r"^(S\d+)_",
        "--epochs", "1", "--min-steps", "8", "--out", runs.to_str().unwrap(), "--json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    let folds = json["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 3);
    let total = 4 * (24 + 6 + 15);
    let tested: u64 = folds.iter().map(|f| f["test"].as_u64().unwrap()).sum();
    assert_eq!(tested, total, "every image is tested exactly once");
    for f in folds {
        let sum = f["train"].as_u64().unwrap()
            + f["holdout"].as_u64().unwrap()
            + f["test"].as_u64().unwrap();
        assert_eq!(sum, total);
        let acc = f["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
    }
    let summed: u64 = json["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(summed, total);

    // folds.csv: one fold per person, and each class spread over the folds.
    let text = std::fs::read_to_string(runs.join("folds.csv")).unwrap();
    let mut person_fold: HashMap<String, String> = HashMap::new();
    let mut class_fold: HashMap<(String, String), usize> = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (class, group, fold) = (f[1].trim_matches('"'), f[2].trim_matches('"'), f[3]);
        let before = person_fold.insert(group.to_string(), fold.to_string());
        assert!(before.is_none_or(|b| b == fold), "{group} in two folds");
        *class_fold.entry((class.into(), fold.into())).or_default() += 1;
    }
    assert_eq!(person_fold.len(), 4 * (8 + 2 + 5));
    for (_, class) in CLASSES {
        let counts: Vec<usize> = ["1", "2", "3"]
            .iter()
            .map(|f| {
                class_fold
                    .get(&(class.to_string(), f.to_string()))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        // 45 images in 15 people of 3: an even share is 15 per fold.
        assert!(
            counts.iter().all(|&c| (9..=21).contains(&c)),
            "{class}: {counts:?}"
        );
    }
}

#[test]
fn curve_writes_a_row_per_run_and_resumes() {
    let Some(csv) = fer2013() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("faces");
    make_folder(&csv, &data, 20, 10, 100);
    let out = tmp.path().join("curve");
    #[rustfmt::skip]
    let args = [
        "curve", "--images", data.to_str().unwrap(), "--per-class", "5,20", "--repeats", "2",
        "--epochs", "1", "--min-steps", "1", "--out", out.to_str().unwrap(),
    ];
    let table = ferrite_ok(&args);
    let text = std::fs::read_to_string(out.join("curve.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2 * 2 * 2, "{text}");
    for r in &rows {
        let expected = if r[2] == "5" { 4 * 5 } else { 4 * 20 };
        assert_eq!(r[4].parse::<usize>().unwrap(), expected, "{r:?}");
        let acc: f64 = r[7].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc));
    }
    // Both methods saw the same draw: same sizes, both methods present for each.
    for size in ["5", "20"] {
        for method in ["scratch", "finetune"] {
            assert_eq!(
                rows.iter()
                    .filter(|r| r[0] == method && r[2] == size)
                    .count(),
                2
            );
        }
    }
    assert!(
        table.contains("finetune") && table.contains("scratch"),
        "{table}"
    );
    let png = image::open(out.join("curve.png")).unwrap();
    assert_eq!((png.width(), png.height()), (800, 520));

    // Run again: nothing left to do, the rows stay.
    let again = ferrite(&args);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("8 runs done"));
    assert_eq!(
        std::fs::read_to_string(out.join("curve.csv")).unwrap(),
        text
    );

    // Another network into the same folder: its runs are new rows beside the others. Its
    // 20 images are copied 17 times so that 2 epochs take the 12 steps asked for
    // (6 batches of 64 each), where 12 epochs of one batch would have validated 12 times.
    #[rustfmt::skip]
    let more = [
        "curve", "--images", data.to_str().unwrap(), "--per-class", "5", "--repeats", "1",
        "--arch", "mini-xception", "--methods", "scratch",
        "--epochs", "2", "--min-steps", "12", "--out", out.to_str().unwrap(),
    ];
    let run = ferrite(&more);
    let (table, log) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "{log}");
    assert!(log.contains("8 runs done"), "{log}");
    assert!(
        log.contains("scratch (mini-xception): 20 images, 34 passes"),
        "{log}"
    );
    let text = std::fs::read_to_string(out.join("curve.csv")).unwrap();
    let added: Vec<&str> = text.lines().last().unwrap().split(',').collect();
    assert_eq!(
        &added[..6],
        ["scratch", "mini-xception", "5", "1", "20", "34"]
    );
    let best: usize = added[6].parse().unwrap();
    assert!(best == 17 || best == 34, "{added:?}");
    assert_eq!(text.lines().count(), 1 + 9);
    assert!(
        table.contains("mini-xception") && table.contains("ferrite"),
        "{table}"
    );
}
