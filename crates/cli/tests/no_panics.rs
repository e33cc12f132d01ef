//! No user input makes `ferrite` panic: every subcommand, with missing, empty,
//! folder-instead-of-file, garbage and out-of-range arguments, ends with a clear error (a
//! non-zero exit that is not a panic's 101, a message, and no "panicked" in what it prints;
//! `data check` writes its report of problems to standard output).

mod common;

use std::path::Path;

use common::ferrite;

/// A tiny FER2013 CSV in the Kaggle format, with made-up pixels (a valid file to pair
/// with a broken second argument).
fn tiny_fer2013(path: &Path) {
    let mut text = String::from("emotion,pixels,Usage\n");
    for (i, usage) in ["Training", "Training", "PublicTest", "PrivateTest"]
        .iter()
        .enumerate()
    {
        let pixels: Vec<String> = (0..2304)
            .map(|p| ((p * 7 + i * 31) % 256).to_string())
            .collect();
        text.push_str(&format!("{},{},{usage}\n", i % 7, pixels.join(" ")));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn every_subcommand_fails_cleanly_on_bad_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let (missing, empty, dir, garbage, png, csv) = (
        p("missing.csv"),
        p("empty.csv"),
        p("a-folder"),
        p("garbage.bin"),
        p("face.png"),
        p("tiny.csv"),
    );
    std::fs::write(&empty, b"").unwrap();
    std::fs::create_dir(&dir).unwrap();
    // Deterministic junk: control bytes, invalid UTF-8, a gzip magic, stray commas.
    let junk: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .chain(*b"\x1f\x8b,,\n\xff\xfe")
        .collect();
    std::fs::write(&garbage, &junk).unwrap();
    image::GrayImage::from_pixel(48, 48, image::Luma([120]))
        .save(&png)
        .unwrap();
    tiny_fer2013(Path::new(&csv));
    let out = p("out");

    let bad_files = [&missing, &empty, &dir, &garbage, &png];
    let mut cases: Vec<Vec<String>> = Vec::new();
    let mut add = |args: &[&str]| cases.push(args.iter().map(|s| s.to_string()).collect());
    for f in bad_files {
        for sub in ["stats", "check"] {
            add(&["data", sub, "--fer2013", f]);
            add(&["data", sub, "--fer2013", &csv, "--ferplus", f]);
            add(&["data", sub, "--images", f]);
        }
        add(&["data", "sheet", "--fer2013", f, "--out", &p("sheet.png")]);
        add(&["data", "export", "--fer2013", f, "--out", &out]);
        add(&["info", "--model", f]);
        add(&["train", "--fer2013", f, "--out", &out, "--epochs", "1"]);
        add(&["train", "--images", f, "--out", &out, "--epochs", "1"]);
        add(&["train", "--fer2013", &csv, "--resume", f]);
        add(&["finetune", "--fer2013", &csv, "--from", f, "--out", &out]);
        add(&["cv", "--images", f, "--folds", "2"]);
        add(&["curve", "--fer2013", f, "--out", &out]);
        add(&["eval", "--model", f, "--fer2013", &csv]);
        add(&["eval", "--model", f, "--images", f]);
        add(&["predict", "--model", f, &png]);
        add(&["serve", "--model", f, "--addr", "127.0.0.1:0"]);
    }
    // Out-of-range and malformed values.
    for args in [
        &["info", "--arch", "resnet-9000"][..],
        &["train", "--fer2013", &csv, "--out", &out, "--epochs", "0"],
        &[
            "train",
            "--fer2013",
            &csv,
            "--out",
            &out,
            "--batch-size",
            "0",
        ],
        &["train", "--fer2013", &csv, "--out", &out, "--lr", "-1"],
        &["train", "--fer2013", &csv, "--out", &out, "--lr", "NaN"],
        &["train", "--fer2013", &csv, "--out", &out, "--threads", "0"],
        &[
            "train",
            "--fer2013",
            &csv,
            "--out",
            &out,
            "--device",
            "tpu:7",
        ],
        &[
            "finetune",
            "--fer2013",
            &csv,
            "--out",
            &out,
            "--freeze",
            "99",
        ],
        &["cv", "--fer2013", &csv, "--folds", "1"],
        &["cv", "--fer2013", &csv, "--folds", "50"],
        &["cv", "--fer2013", &csv, "--group-regex", "(unclosed"],
        &["cv", "--fer2013", &csv, "--group-regex", "^(S\\d+)_"],
        &[
            "curve",
            "--fer2013",
            &csv,
            "--out",
            &out,
            "--per-class",
            "0",
        ],
        &[
            "curve",
            "--fer2013",
            &csv,
            "--out",
            &out,
            "--per-class",
            "ten",
        ],
        &["curve", "--fer2013", &csv, "--out", &out, "--repeats", "0"],
        &["curve", "--fer2013", &csv, "--out", &garbage],
        &[
            "eval",
            "--model",
            &png,
            "--fer2013",
            &csv,
            "--split",
            "Nowhere",
        ],
        &["predict", &dir],
        &["predict", "--min-score", "1.5", &png],
        &["predict", "--min-face", "-3", &png],
        &["predict", "--detect-size", "8", &png],
        &["predict", "--detect-size", "huge", &png],
        &["predict", "/dev/zero"],
        &["robustness", "--model", &png, "--fer2013", &csv],
        &["predict", "--top", "0", &png],
        &["serve", "--addr", "not-an-address"],
        &["serve", "--addr", "127.0.0.1:99999"],
        &["serve", "--queue", "0"],
        &["serve", "--max-megapixels", "-1"],
        &["serve", "--timeout", "inf"],
        &["serve", "--header-timeout", "nan"],
        &["serve", "--max-connections", "0"],
        &["serve", "--max-megapixels-in-flight", "10"],
        &["bench", "--arch", "ferrite", "--batch", "0"],
        &["bench", "--arch", "ferrite", "--iters", "0"],
        &["data", "stats"],
        &["data", "sheet", "--fer2013", &csv, "--out", &dir],
        &["data", "export", "--fer2013", &csv, "--out", &garbage],
        &["no-such-command"],
    ] {
        add(args);
    }

    let mut failures = Vec::new();
    for args in &cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = ferrite(&refs);
        let stderr = String::from_utf8_lossy(&run.stderr);
        let code = run.status.code();
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") || code == Some(101) {
            failures.push(format!("ferrite {}: {code:?}\n{stderr}", args.join(" ")));
        } else if run.status.success() {
            failures.push(format!(
                "ferrite {}: succeeded on bad input",
                args.join(" ")
            ));
        } else if stderr.trim().is_empty() && run.stdout.is_empty() {
            failures.push(format!("ferrite {}: failed without a word", args.join(" ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
