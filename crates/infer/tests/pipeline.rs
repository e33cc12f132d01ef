//! The photo path against the dataset path: FER2013 PrivateTest faces shown as photos
//! (enlarged 4x to 192x192 on a 320x320 gray canvas), then found, aligned (or boxed) and
//! classified by the code `ferrite predict` runs, against the same model on the raw 48x48
//! faces (`ferrite eval`). Needs `../shared/data/fer2013` (SKIPPED without it, a failure under
//! `FERRITE_REQUIRE_DATA=1`). Prints the figures docs/results.md quotes (`-- --nocapture`).

mod common;

use std::path::PathBuf;

use common::{manifest_dir, shared};

use burn::tensor::Device;
use ferrite_data::SplitRole;
use ferrite_data::face::PIXELS;
use ferrite_infer::align::face_on_canvas;
use ferrite_infer::predict::{FaceOptions, Predictor, classify_faces, find_faces};
use ferrite_model::predict::argmax;
use image::DynamicImage;

fn fer2013() -> Option<PathBuf> {
    shared("fer2013/fer2013.csv.gz")
}

#[test]
fn privatetest_faces_as_photos_lose_little_through_detection_and_framing() {
    let Some(csv) = fer2013() else { return };
    let data = ferrite_data::fer2013::load_fer2013(&csv).unwrap();
    let test = &data.split_by_role(SplitRole::Test).unwrap().samples;
    let predictor = Predictor::load(
        &[manifest_dir().join("../../models/fer2013-standard.safetensors")],
        Device::flex(),
    )
    .unwrap();
    let n = test.len();
    let planes: Vec<[u8; PIXELS]> = (0..n).map(|i| test.image(i).try_into().unwrap()).collect();
    let raw: Vec<usize> = predictor
        .classify(&planes)
        .iter()
        .map(|p| argmax(p))
        .collect();
    let photos: Vec<DynamicImage> = (0..n)
        .map(|i| DynamicImage::ImageLuma8(face_on_canvas(test.image(i), 4, 320).0))
        .collect();
    let correct = |pred: usize, i: usize| (pred == test.label(i) as usize) as usize;
    let raw_correct: usize = (0..n).map(|i| correct(raw[i], i)).sum();
    println!(
        "raw 48x48 faces: {:.2} % of {n}",
        100.0 * raw_correct as f64 / n as f64
    );
    let mut checks: Vec<(bool, usize, f64, f64)> = Vec::new();
    for align in [true, false] {
        let options = FaceOptions {
            align,
            ..FaceOptions::default()
        };
        let preds = classify_faces(find_faces(&photos, &options).unwrap(), &predictor);
        let (mut found, mut hit, mut raw_hit) = (0, 0, 0);
        for (i, p) in preds.iter().enumerate() {
            // The largest face is the one on the canvas (faces come largest first).
            let Some(face) = p.faces.first() else {
                continue;
            };
            found += 1;
            hit += correct(face.top, i);
            raw_hit += correct(raw[i], i);
        }
        let (acc, raw_acc) = (hit as f64 / found as f64, raw_hit as f64 / found as f64);
        // Faces missed count as wrong in the end-to-end figure.
        let end_to_end = hit as f64 / n as f64;
        println!(
            "{}: found {found} of {n} ({:.1} %); accuracy on them {:.2} % (raw on the same faces {:.2} %); end to end {:.2} %",
            if align { "aligned" } else { "box crop" },
            100.0 * found as f64 / n as f64,
            100.0 * acc,
            100.0 * raw_acc,
            100.0 * end_to_end
        );
        checks.push((align, found, acc, raw_acc));
    }
    // The pipeline is measured with one fixed model, the standard one (the distilled
    // models/fer2013-edge.safetensors loses 1.7 and 1.2 points here: docs/results.md).
    // Measured 2026-12-06 with models/fer2013-standard.safetensors: 97.3 % found; upright 69.41 %
    // against 70.52 % raw on the same faces (-1.1; the aim is -1), box crop 69.98 % (-0.5;
    // on PublicTest, where the default was chosen, upright lost 0.8 and the box crop 1.2).
    for (align, found, acc, raw_acc) in checks {
        assert!(found as f64 >= 0.97 * n as f64, "found only {found} of {n}");
        let allowed = if align { 0.015 } else { 0.02 };
        assert!(
            acc >= raw_acc - allowed,
            "align {align}: {acc} vs raw {raw_acc} on the same faces"
        );
    }
}
