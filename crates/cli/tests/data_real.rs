//! The data layer on the real FER2013 and FERPlus files (`../shared/data`).

mod common;

use common::*;
use serde_json::Value;

/// Reads the per-Usage rows of a count table in MANIFEST.txt: `  <Split>  n n n ... total N`.
fn manifest_counts(after_heading: &str, split: &str, columns: usize) -> Vec<u64> {
    let manifest = std::fs::read_to_string(data_dir().join("MANIFEST.txt")).expect("MANIFEST.txt");
    let section = &manifest[manifest.find(after_heading).expect("manifest heading")..];
    let line = section
        .lines()
        .find(|l| l.trim_start().starts_with(split))
        .expect("manifest split line");
    line.split_whitespace()
        .skip(1)
        .take(columns)
        .map(|n| n.parse().unwrap())
        .collect()
}

/// Per-class counts of one split in `data stats --json` output, in `classes` order.
fn split_counts(json: &Value, split: &str, classes: &[&str]) -> Vec<u64> {
    classes
        .iter()
        .map(|c| json["splits"][split]["classes"][c].as_u64().unwrap())
        .collect()
}

#[test]
fn fer2013_class_counts_match_the_manifest() {
    let Some(csv) = fer2013() else { return };
    let out = ferrite_ok(&[
        "data",
        "stats",
        "--fer2013",
        csv.to_str().unwrap(),
        "--json",
    ]);
    let json: Value = serde_json::from_str(&out).expect("stats --json prints one JSON object");
    assert_eq!(json["dataset"], "FER2013");
    let classes: Vec<&str> = json["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        [
            "Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"
        ]
    );
    for split in ["Training", "PublicTest", "PrivateTest"] {
        let want = manifest_counts("class counts per Usage", split, 7);
        assert_eq!(split_counts(&json, split, &classes), want, "{split}");
        assert_eq!(
            json["splits"][split]["total"].as_u64().unwrap(),
            want.iter().sum::<u64>()
        );
    }
}

#[test]
fn ferplus_majority_counts_match_the_protocol() {
    let Some((csv, votes)) = ferplus() else {
        return;
    };
    let out = ferrite_ok(&[
        "data",
        "stats",
        "--fer2013",
        csv.to_str().unwrap(),
        "--ferplus",
        votes.to_str().unwrap(),
        "--labels",
        "majority",
        "--json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    let totals: Vec<u64> = ["Training", "PublicTest", "PrivateTest"]
        .iter()
        .map(|s| json["splits"][s]["total"].as_u64().unwrap())
        .collect();
    assert_eq!(totals, [25060, 3199, 3153]);
    // Per class, the manifest's majority table (its first 8 columns are the 8 emotions).
    let classes: Vec<&str> = json["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(classes.len(), 8);
    for split in ["Training", "PublicTest", "PrivateTest"] {
        let want = manifest_counts("majority label counts per split", split, 8);
        assert_eq!(split_counts(&json, split, &classes), want, "{split}");
    }
}

#[test]
fn fer2013_check_is_clean() {
    let Some(csv) = fer2013() else { return };
    let out = ferrite_ok(&["data", "check", "--fer2013", csv.to_str().unwrap()]);
    assert!(
        out.contains("ok: 35887 entries checked, no problems"),
        "{out}"
    );
}

#[test]
fn export_round_trips_pixels_and_labels() {
    let Some(csv) = fer2013() else { return };
    let csv = csv.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("png");
    let out = ferrite_ok(&[
        "data",
        "export",
        "--fer2013",
        csv,
        "--split",
        "PrivateTest",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.contains("wrote 3589 PNG files"), "{out}");

    let original = ferrite_data::fer2013::load_fer2013(std::path::Path::new(csv)).unwrap();
    let exported = ferrite_data::folder::load_folder(&out_dir).unwrap();
    assert!(exported.skipped.is_empty());
    assert_eq!(exported.classes, original.classes);
    let a = &original.split("PrivateTest").unwrap().samples;
    let b = &exported.split("test").unwrap().samples;
    assert_eq!(b.len(), a.len());
    // Files are named after their CSV row, so pair them up by row and compare exactly.
    for i in 0..b.len() {
        let ferrite_data::Origin::File(path) = b.origin(i) else {
            panic!("folder samples come from files")
        };
        let row: usize = path.file_stem().unwrap().to_str().unwrap()["row".len()..]
            .parse()
            .unwrap();
        let j = (0..a.len())
            .find(|&j| a.origin(j) == &ferrite_data::Origin::Row(row))
            .unwrap();
        assert_eq!(b.label(i), a.label(j), "label of row {row}");
        assert_eq!(b.image(i), a.image(j), "pixels of row {row}");
    }
}

#[test]
fn sheet_is_drawn() {
    let Some(csv) = fer2013() else { return };
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("sheet.png");
    ferrite_ok(&[
        "data",
        "sheet",
        "--fer2013",
        csv.to_str().unwrap(),
        "--per-class",
        "4",
        "--out",
        png.to_str().unwrap(),
    ]);
    let img = image::open(&png).unwrap().to_luma8();
    // 7 rows of 96 px faces with 4 px gaps.
    assert_eq!(img.height(), 7 * 100 + 4);
    // Faces are not blank: the sheet has dark and light pixels in the face area.
    let face_area: Vec<u8> = img
        .rows()
        .skip(4)
        .take(96)
        .flat_map(|r| {
            r.skip(img.width() as usize - 100)
                .map(|p| p.0[0])
                .collect::<Vec<_>>()
        })
        .collect();
    let (min, max) = (
        face_area.iter().min().unwrap(),
        face_area.iter().max().unwrap(),
    );
    assert!(max - min > 50, "face area looks blank ({min}..{max})");
}
