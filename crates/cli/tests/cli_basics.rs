//! The CLI on small hand-made inputs: clear errors, exit codes, and the quick commands.

mod common;

use common::*;

fn pixels(n: usize) -> String {
    vec!["128"; n].join(" ")
}

#[test]
fn check_lists_every_bad_row_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    let content = format!(
        "emotion,pixels,Usage\n0,{},Training\n9,{},Training\n1,{},PublicTest\n2,{},Nowhere\n",
        pixels(2304),
        pixels(2304),
        pixels(2303),
        pixels(2304)
    );
    std::fs::write(&csv, content).unwrap();
    let out = ferrite(&["data", "check", "--fer2013", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("line 3: emotion label `9` is out of range"),
        "{text}"
    );
    assert!(
        text.contains("line 4: expected 2304 pixel values, found 2303"),
        "{text}"
    );
    assert!(text.contains("line 5: unknown Usage `Nowhere`"), "{text}");
    assert!(
        text.contains("invalid: 4 entries checked, 3 problem(s)"),
        "{text}"
    );

    // Loading commands refuse the file and point at `data check`.
    let out = ferrite(&["data", "stats", "--fer2013", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3 invalid entries") && err.contains("bad.csv: line 3"),
        "{err}"
    );
}

#[test]
fn missing_file_and_wrong_votes_file_are_named() {
    let out = ferrite(&["data", "stats", "--fer2013", "/no/such/fer2013.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/fer2013.csv: cannot open"));

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fer.csv");
    std::fs::write(
        &csv,
        format!("emotion,pixels,Usage\n3,{},Training\n", pixels(2304)),
    )
    .unwrap();
    let votes = dir.path().join("votes.csv");
    std::fs::write(&votes, "a,b,c\n").unwrap();
    let out = ferrite(&[
        "data",
        "stats",
        "--fer2013",
        csv.to_str().unwrap(),
        "--ferplus",
        votes.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("votes.csv: line 1: expected the FERPlus header"),
        "{err}"
    );
}

#[test]
fn ferplus_rows_must_line_up_with_fer2013() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fer.csv");
    std::fs::write(
        &csv,
        format!(
            "emotion,pixels,Usage\n3,{p},Training\n3,{p},PublicTest\n",
            p = pixels(2304)
        ),
    )
    .unwrap();
    let votes = dir.path().join("votes.csv");
    let header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n";
    std::fs::write(&votes, format!("{header}Training,fer0000000.png,0,10,0,0,0,0,0,0,0,0\nTraining,fer0000001.png,10,0,0,0,0,0,0,0,0,0\n")).unwrap();
    let out = ferrite(&[
        "data",
        "check",
        "--fer2013",
        csv.to_str().unwrap(),
        "--ferplus",
        votes.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("line 3: Usage is Training but fer2013.csv row 1 is PublicTest"),
        "{text}"
    );
}

#[test]
fn folder_stats_report_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let happy = dir.path().join("train/happy");
    std::fs::create_dir_all(&happy).unwrap();
    image::GrayImage::from_pixel(60, 60, image::Luma([90]))
        .save(happy.join("a.png"))
        .unwrap();
    std::fs::write(happy.join("b.jpg"), b"garbage").unwrap();
    let out = ferrite(&[
        "data",
        "stats",
        "--images",
        dir.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["splits"]["train"]["classes"]["happy"], 1);
    assert_eq!(json["skipped"], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("b.jpg: not an image format"));
}

#[test]
fn dataset_options_are_validated_by_the_parser() {
    // --ferplus needs --fer2013; --fer2013 and --images exclude each other.
    assert_eq!(
        ferrite(&["data", "stats", "--ferplus", "x.csv", "--images", "d"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        ferrite(&["data", "stats", "--fer2013", "x.csv", "--images", "d"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(ferrite(&["data", "stats"]).status.code(), Some(2));
}

#[test]
fn bench_prints_positive_figures() {
    let out = ferrite_ok(&[
        "bench",
        "--arch",
        "mini-xception",
        "--batch",
        "8",
        "--iters",
        "1",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in [
        "train_images_per_second",
        "infer_images_per_second",
        "latency_ms_p50",
        "train_gflops",
    ] {
        assert!(json[key].as_f64().unwrap() > 0.0, "{key}: {json}");
    }
    assert_eq!(json["macs_per_image"], 5_685_631);
}

#[test]
fn info_reports_the_layer_table_totals() {
    let out = ferrite_ok(&["info", "--arch", "ferrite", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(
        layers.first().unwrap()["output"],
        serde_json::json!([16, 48, 48]),
        "full resolution first"
    );
    assert_eq!(layers.last().unwrap()["output"], serde_json::json!([7]));
    let sum: u64 = layers.iter().map(|l| l["params"].as_u64().unwrap()).sum();
    assert_eq!(json["params"].as_u64().unwrap(), sum);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["info", "--arch", "vgg13"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before ferrite prints, as `| head` does once it has enough:
    // ferrite's writes then fail with a broken pipe.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
