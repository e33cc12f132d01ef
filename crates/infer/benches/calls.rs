//! The Rust side of the Python package's overhead benchmark (`crates/python/bench.py`):
//! the time of the calls the Python methods wrap, made here without Python.
//!
//! `cargo bench -p ferrite-infer --bench calls -- DIR` writes the inputs to DIR (the
//! 640x480 one-face JPEG of the photo bench as `portrait.jpg`, and 64 face crops of the
//! group photo, 48x48 each, as `faces64.u8`), so that Python times the same work, then
//! prints, as JSON, the median milliseconds of: classifying one crop (where the cost of a
//! call shows most) and the 64 crops; predicting the
//! decoded portrait; reading, decoding and predicting the file. All cores, as Python gets.

mod fixtures;

use std::time::Instant;

use burn::tensor::Device;
use ferrite_data::decode::{
    DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, decode_image, read_image_bytes,
};
use ferrite_data::face::PIXELS;
use ferrite_infer::predict::{FaceOptions, Predictor, predict_images};
use ferrite_infer::{DetectOptions, FaceDetector};

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .expect("usage: cargo bench -p ferrite-infer --bench calls -- DIR"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let jpeg = fixtures::portrait_jpeg();
    let portrait_path = dir.join("portrait.jpg");
    std::fs::write(&portrait_path, &jpeg).unwrap();
    // 64 crops: the 29 faces of the group photo, round and round.
    let group = image::open(fixtures::group_photo()).unwrap();
    let gray = group.to_luma8();
    let faces = FaceDetector::new(DetectOptions::default())
        .unwrap()
        .detect(&group)
        .faces;
    let planes: Vec<[u8; PIXELS]> = faces
        .iter()
        .cycle()
        .take(64)
        .map(|f| ferrite_infer::align::face_plane(&gray, f, true))
        .collect();
    std::fs::write(dir.join("faces64.u8"), planes.concat()).unwrap();

    let predictor = Predictor::load(&[], Device::flex()).unwrap();
    let options = FaceOptions::default();
    let portrait = image::load_from_memory(&jpeg).unwrap();
    let classify = median_ms(30, || {
        std::hint::black_box(predictor.classify(&planes));
    });
    let classify1 = median_ms(100, || {
        std::hint::black_box(predictor.classify(&planes[..1]));
    });
    let pixels = median_ms(30, || {
        std::hint::black_box(
            predict_images(std::slice::from_ref(&portrait), &options, &predictor).unwrap(),
        );
    });
    let file = median_ms(30, || {
        let bytes = read_image_bytes(
            std::fs::File::open(&portrait_path).unwrap(),
            DEFAULT_MAX_FILE_BYTES,
        )
        .unwrap();
        let img = decode_image(&bytes, DEFAULT_MAX_PIXELS).unwrap();
        std::hint::black_box(predict_images(&[img], &options, &predictor).unwrap());
    });
    println!(
        "{}",
        serde_json::json!({
            "classify1_ms": classify1,
            "classify64_ms": classify,
            "predict_pixels_ms": pixels,
            "predict_file_ms": file,
        })
    );
}
