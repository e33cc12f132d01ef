//! `ferrite predict` on real photos and on bad input.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{ferrite, ferrite_ok, group_photo, manifest_dir};

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).expect("predict --json prints JSON")
}

#[test]
fn finds_the_faces_of_a_group_photo_with_probabilities_that_sum_to_one() {
    let photo = group_photo();
    let dir = tempfile::tempdir().unwrap();
    let annotated = dir.path().join("annotated");
    let out = ferrite_ok(&[
        "predict",
        photo.to_str().unwrap(),
        "--json",
        "--annotate",
        annotated.to_str().unwrap(),
    ]);
    let doc = json(&out);
    assert_eq!(doc["model"]["source"], "built-in");
    let image = &doc["images"][0];
    assert_eq!(
        (image["width"].as_u64(), image["height"].as_u64()),
        (Some(1666), Some(1136))
    );
    let faces = image["faces"].as_array().unwrap();
    // 29 people face the camera.
    assert_eq!(faces.len(), 29);
    let classes = doc["model"]["classes"].as_array().unwrap();
    for f in faces {
        let probs = f["probabilities"].as_object().unwrap();
        assert_eq!(probs.len(), classes.len());
        let sum: f64 = probs.values().map(|p| p.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
        let top = f["emotion"].as_str().unwrap();
        let best = probs
            .iter()
            .max_by(|a, b| a.1.as_f64().partial_cmp(&b.1.as_f64()).unwrap())
            .unwrap();
        assert_eq!(top, best.0);
        let b = &f["box"];
        assert!(b["x"].as_f64().unwrap() + b["width"].as_f64().unwrap() <= 1666.0);
        assert!(b["width"].as_f64().unwrap() >= 24.0);
        assert!(f["score"].as_f64().unwrap() >= 0.6);
        // Five named landmarks inside the box.
        let marks = f["landmarks"].as_object().unwrap();
        assert_eq!(marks.len(), 5);
        for name in ["right_eye", "left_eye", "nose", "mouth_right", "mouth_left"] {
            let [x, y] = [0, 1].map(|k| marks[name][k].as_f64().unwrap());
            let (bx, by) = (b["x"].as_f64().unwrap(), b["y"].as_f64().unwrap());
            assert!(
                x > bx && x < bx + b["width"].as_f64().unwrap(),
                "{name} {x}"
            );
            assert!(
                y > by && y < by + b["height"].as_f64().unwrap(),
                "{name} {y}"
            );
        }
    }
    // The annotated copy is the same picture, as PNG, with boxes drawn on it.
    let drawn = image::open(annotated.join("solvay-1927.png"))
        .unwrap()
        .to_rgb8();
    let original = image::open(&photo).unwrap().to_rgb8();
    assert_eq!(drawn.dimensions(), original.dimensions());
    let b = &faces[0]["box"];
    let (x, y) = (
        b["x"].as_f64().unwrap().round() as u32,
        b["y"].as_f64().unwrap().round() as u32 + 10,
    );
    assert_ne!(
        drawn.get_pixel(x, y),
        original.get_pixel(x, y),
        "the box's left edge is drawn"
    );
}

#[test]
fn bad_files_are_reported_and_the_others_still_processed() {
    let dir = tempfile::tempdir().unwrap();
    // A blank image (no face), a file that is not an image, and an empty file.
    let blank = dir.path().join("blank.png");
    image::GrayImage::from_pixel(120, 90, image::Luma([128]))
        .save(&blank)
        .unwrap();
    std::fs::write(dir.path().join("notes.jpg"), b"this is not a JPEG").unwrap();
    std::fs::write(dir.path().join("empty.png"), b"").unwrap();
    let out = ferrite(&["predict", dir.path().to_str().unwrap(), "--csv"]);
    assert_eq!(out.status.code(), Some(1), "some files failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("notes.jpg") && stderr.contains("not an image"),
        "{stderr}"
    );
    assert!(
        stderr.contains("empty.png") && stderr.contains("empty file"),
        "{stderr}"
    );
    // The blank image is processed: one CSV row with no face.
    let rows: Vec<&str> = stdout.lines().collect();
    assert!(
        rows[0]
            == "path,face,x,y,width,height,score,right_eye_x,right_eye_y,left_eye_x,\
                    left_eye_y,nose_x,nose_y,mouth_right_x,mouth_right_y,mouth_left_x,\
                    mouth_left_y,top,neutral,happiness,surprise,sadness,anger,disgust,fear,\
                    contempt",
        "{}",
        rows[0]
    );
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows[1].starts_with(&format!("{},,", blank.display())),
        "{}",
        rows[1]
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn no_detect_classifies_whole_images_from_files_and_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let face = dir.path().join("face.png");
    // A face-sized gradient: not a face the detector would find, but --no-detect takes it.
    image::GrayImage::from_fn(48, 48, |x, y| image::Luma([(x * 4 + y * 2) as u8]))
        .save(&face)
        .unwrap();
    let doc = json(&ferrite_ok(&[
        "predict",
        "--no-detect",
        "--json",
        face.to_str().unwrap(),
    ]));
    let faces = doc["images"][0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    assert!(faces[0]["box"].is_null());

    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["predict", "--no-detect", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&face).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let from_stdin = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(from_stdin["images"][0]["path"], "-");
    assert_eq!(
        from_stdin["images"][0]["faces"], doc["images"][0]["faces"],
        "same bytes, same answer"
    );
}

#[test]
fn detector_options_are_checked() {
    let out = ferrite(&["predict", "--min-score", "1.5", "x.png"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("minimum detector score 1.5 is outside 0..1")
    );
    let out = ferrite(&["predict", "--detect-size", "16", "x.png"]);
    assert_eq!(out.status.code(), Some(2), "refused by the parser");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32"));
}

#[test]
fn endless_and_oversized_inputs_are_refused_without_reading_them_whole() {
    // /dev/zero starts with no image signature: refused after its first bytes.
    let out = ferrite(&["predict", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/dev/zero") && stderr.contains("not an image"),
        "{stderr}"
    );
    // A file that starts like a PNG but runs past the 64 MiB limit.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.png");
    let mut png = Vec::new();
    image::GrayImage::new(8, 8)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(65 << 20).unwrap(); // sparse: costs no disk
    let mut f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
    f.write_all(&png).unwrap();
    let out = ferrite(&["predict", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("larger than 67108864 bytes"), "{stderr}");
}

#[test]
fn a_mosaic_of_thousands_of_faces_is_capped_with_a_note() {
    // One face of the group photo (with its hair and collar), 32x36, tiled 45x45 times:
    // 2,025 faces in a 1440x1620 image, searched at full size.
    let group = image::open(group_photo()).unwrap().to_rgb8();
    let face = image::imageops::crop_imm(&group, 850, 225, 90, 105).to_image();
    let face = image::imageops::resize(&face, 32, 36, image::imageops::FilterType::Triangle);
    let mut mosaic = image::RgbImage::new(32 * 45, 36 * 45);
    for i in 0..45 {
        for j in 0..45 {
            image::imageops::replace(&mut mosaic, &face, 32 * i, 36 * j);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mosaic.png");
    mosaic.save(&path).unwrap();
    let out = ferrite(&[
        "predict",
        path.to_str().unwrap(),
        "--detect-size",
        "full",
        "--json",
    ]);
    assert!(out.status.success());
    let doc = json(&String::from_utf8(out.stdout).unwrap());
    let image = &doc["images"][0];
    assert_eq!(image["faces"].as_array().unwrap().len(), 1000);
    assert_eq!(image["capped"], true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("more than 1000 faces"), "{stderr}");
}

#[test]
fn an_ensemble_averages_its_models_and_refuses_models_of_other_classes() {
    let models = manifest_dir().join("../../models");
    let (fer2013, ferplus) = (
        models.join("fer2013.safetensors"),
        models.join("ferplus.safetensors"),
    );
    let photo = group_photo();
    let single = json(&ferrite_ok(&[
        "predict",
        "--json",
        "--model",
        fer2013.to_str().unwrap(),
        photo.to_str().unwrap(),
    ]));
    // A model averaged with itself says what it says alone.
    let twice = format!("{},{}", fer2013.display(), fer2013.display());
    let doubled = json(&ferrite_ok(&[
        "predict",
        "--json",
        "--model",
        &twice,
        photo.to_str().unwrap(),
    ]));
    assert_eq!(single["images"], doubled["images"]);
    assert!(
        doubled["model"]["source"].as_str().unwrap().contains(" + "),
        "{}",
        doubled["model"]
    );
    // FER2013's 7 classes and FERPlus's 8 do not average.
    let mixed = format!("{},{}", fer2013.display(), ferplus.display());
    let out = ferrite(&["predict", "--model", &mixed, photo.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ferplus.safetensors") && stderr.contains("share their classes"),
        "{stderr}"
    );
}
