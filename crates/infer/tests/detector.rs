//! The YuNet detector: the same faces as the reference implementation, its quality on a
//! hand-labelled set and a group photo, and bad images.
//!
//! The reference fixture `fixtures/yunet_reference.json` was written by
//! `tools/yunet/reference.py` (onnxruntime on the original ONNX graph) from the photos in
//! `../shared/data/faces-eval/dlib`, which are read there, never copied. Without that folder
//! the tests that need it say SKIPPED (and fail under `FERRITE_REQUIRE_DATA=1`, as in CI).

mod common;

use std::path::PathBuf;

use common::{manifest_dir, shared};

use ferrite_infer::detect::{DetectOptions, DetectSize, FaceBox, FaceDetector, iou};
use image::DynamicImage;
use serde_json::Value;

fn dlib_dir() -> Option<PathBuf> {
    shared("faces-eval/dlib")
}

fn rect(f: &FaceBox) -> [f32; 4] {
    [f.x, f.y, f.width, f.height]
}

#[test]
fn finds_the_same_faces_as_the_reference_implementation() {
    let Some(dir) = dlib_dir() else { return };
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(manifest_dir().join("tests/fixtures/yunet_reference.json"))
            .unwrap(),
    )
    .unwrap();
    let threshold = fixture["score_threshold"].as_f64().unwrap() as f32;
    // The reference ran each photo at its own size: so does this.
    let detector = FaceDetector::new(DetectOptions {
        min_face: 0,
        min_score: threshold,
        size: DetectSize::Full,
    })
    .unwrap();
    let mut matched = 0;
    for (name, want) in fixture["images"].as_object().unwrap() {
        let img = image::open(dir.join(name)).unwrap();
        let (w, h) = (img.width() as f32, img.height() as f32);
        let ours = detector.detect(&img).faces;
        let mut used = vec![false; ours.len()];
        for r in want["faces"].as_array().unwrap() {
            let b: Vec<f32> = r["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            // Our boxes are clipped to the photo: clip the reference's the same way.
            let (x0, y0) = (b[0].clamp(0.0, w), b[1].clamp(0.0, h));
            let (x1, y1) = ((b[0] + b[2]).clamp(0.0, w), (b[1] + b[3]).clamp(0.0, h));
            let want_rect = [x0, y0, x1 - x0, y1 - y0];
            let score = r["score"].as_f64().unwrap() as f32;
            let (k, best) = ours
                .iter()
                .enumerate()
                .map(|(k, f)| (k, iou(&rect(f), &want_rect)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((usize::MAX, 0.0));
            if best < 0.9 && score < threshold + 0.02 {
                continue; // at the threshold: either side may keep it
            }
            assert!(
                best >= 0.9,
                "{name}: reference face {want_rect:?} (score {score}) not found; best IoU {best}"
            );
            let f = &ours[k];
            assert!(
                (f.score - score).abs() <= 0.02,
                "{name}: score {} vs reference {score}",
                f.score
            );
            for (l, r) in f.landmarks.iter().zip(r["landmarks"].as_array().unwrap()) {
                let (rx, ry) = (r[0].as_f64().unwrap() as f32, r[1].as_f64().unwrap() as f32);
                assert!(
                    (l[0] - rx).abs() <= 1.0 && (l[1] - ry).abs() <= 1.0,
                    "{name}: landmark {l:?} vs reference [{rx}, {ry}]"
                );
            }
            used[k] = true;
            matched += 1;
        }
        for (f, used) in ours.iter().zip(used) {
            assert!(
                used || f.score < threshold + 0.02,
                "{name}: extra face {:?} (score {}) not in the reference",
                rect(f),
                f.score
            );
        }
    }
    assert!(
        matched >= 50,
        "only {matched} of 53 reference faces matched"
    );
}

/// The hand-drawn boxes of dlib's `training.xml` and `testing.xml`: (file, [x, y, w, h]).
fn dlib_truth(dir: &std::path::Path) -> Vec<(String, Vec<[f32; 4]>)> {
    let mut out = Vec::new();
    for xml in ["training.xml", "testing.xml"] {
        let text = std::fs::read_to_string(dir.join(xml)).unwrap();
        for image in text.split("<image file='").skip(1) {
            let file = image[..image.find('\'').unwrap()].to_string();
            let attr = |b: &str, name: &str| -> f32 {
                let at = b.find(&format!("{name}='")).unwrap() + name.len() + 2;
                b[at..at + b[at..].find('\'').unwrap()].parse().unwrap()
            };
            let boxes = image
                .split("<box ")
                .skip(1)
                .map(|b| {
                    [
                        attr(b, "left"),
                        attr(b, "top"),
                        attr(b, "width"),
                        attr(b, "height"),
                    ]
                })
                .collect();
            out.push((file, boxes));
        }
    }
    out
}

#[test]
fn finds_the_hand_labelled_faces_of_the_dlib_set_and_no_dog() {
    let Some(dir) = dlib_dir() else { return };
    let mut truth = dlib_truth(&dir);
    assert_eq!(truth.iter().map(|t| t.1.len()).sum::<usize>(), 43);
    truth.push(("dogs.jpg".into(), vec![])); // a negative: no faces
    let detector = FaceDetector::new(DetectOptions::default()).unwrap();
    let (mut hits, mut found, mut total) = (0, 0, 0);
    for (file, boxes) in &truth {
        let faces = detector.detect(&image::open(dir.join(file)).unwrap()).faces;
        found += faces.len();
        total += boxes.len();
        // Greedy one-to-one matching at IoU >= 0.5.
        let mut used = vec![false; faces.len()];
        for b in boxes {
            if let Some(k) = (0..faces.len())
                .filter(|&k| !used[k] && iou(&rect(&faces[k]), b) >= 0.5)
                .max_by(|&a, &c| iou(&rect(&faces[a]), b).total_cmp(&iou(&rect(&faces[c]), b)))
            {
                used[k] = true;
                hits += 1;
            }
        }
    }
    let (recall, precision) = (
        hits as f32 / total as f32,
        hits as f32 / found.max(1) as f32,
    );
    println!(
        "dlib set: {hits} of {total} faces found (recall {recall:.3}), {found} detections (precision {precision:.3})"
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision >= 0.9, "precision {precision}");
}

#[test]
fn finds_the_29_people_of_the_solvay_photo() {
    let photo = image::open(manifest_dir().join("../../photos/solvay-1927.jpg")).unwrap();
    let faces = FaceDetector::new(DetectOptions::default())
        .unwrap()
        .detect(&photo)
        .faces;
    assert_eq!(faces.len(), 29);
    for f in &faces {
        // Eyes above the nose, nose above the mouth, the right eye on the image's left.
        let [re, le, nose, mr, ml] = f.landmarks;
        assert!(re[0] < le[0] && mr[0] < ml[0], "{f:?}");
        assert!(
            re[1].max(le[1]) < nose[1] && nose[1] < mr[1].min(ml[1]),
            "{f:?}"
        );
        assert!(f.width >= 24.0 && f.x + f.width <= 1666.0);
    }
}

#[test]
fn full_size_search_in_tiles_finds_each_face_once() {
    // 1666x1136 is searched in overlapping 1024-pixel tiles: faces in the overlaps must be
    // neither lost nor doubled, and land where one search of the whole photo at the same
    // size puts them.
    let photo = image::open(manifest_dir().join("../../photos/solvay-1927.jpg")).unwrap();
    let whole = FaceDetector::new(DetectOptions {
        size: DetectSize::Longest(1666),
        ..DetectOptions::default()
    })
    .unwrap()
    .detect(&photo)
    .faces;
    assert_eq!(whole.len(), 29);
    let tiled = FaceDetector::new(DetectOptions {
        size: DetectSize::Full,
        ..DetectOptions::default()
    })
    .unwrap()
    .detect(&photo)
    .faces;
    assert_eq!(tiled.len(), 29);
    for f in &whole {
        let best = tiled
            .iter()
            .map(|t| iou(&rect(t), &rect(f)))
            .fold(0.0, f32::max);
        // The network sees far around a face (its coarsest level has stride 32), so a tile's
        // edge could move a box a little; here none moves.
        assert!(best > 0.95, "{f:?}: best IoU {best}");
    }
}

#[test]
fn tiny_blank_and_noise_images_have_no_faces_and_do_not_panic() {
    let detector = FaceDetector::new(DetectOptions::default()).unwrap();
    let mut seed = 12345u32;
    let mut noise = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed >> 24) as u8
    };
    let images = [
        DynamicImage::new_luma8(1, 1),
        DynamicImage::new_rgb8(5, 3),
        DynamicImage::new_rgb8(1, 4000),
        DynamicImage::ImageLuma8(image::GrayImage::from_pixel(640, 480, image::Luma([128]))),
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(640, 480, |_, _| {
            image::Rgb([noise(), noise(), noise()])
        })),
    ];
    for img in &images {
        let found = detector.detect(img);
        assert!(
            found.faces.is_empty() && !found.capped,
            "{}x{}: {:?}",
            img.width(),
            img.height(),
            found.faces
        );
    }
}
