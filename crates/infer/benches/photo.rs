//! End-to-end speed of `ferrite predict` on a photo: decode + detect + classify.
//!
//! `cargo bench -p ferrite-infer` builds a 640x480 JPEG with one face (~180 pixels) from the
//! group photo in the `rustface` crate, then prints p50/p95 milliseconds of each stage on one
//! core, and photos per second for a folder of such photos on all cores.

mod fixtures;

use std::time::Instant;

use burn::tensor::Device;
use ferrite_infer::predict::{FaceOptions, Predictor, face_plane, predict_images};
use ferrite_infer::{DetectOptions, FaceDetector};
use image::DynamicImage;

fn percentile(times: &mut [f64], p: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    times[((times.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let Some(jpeg) = fixtures::portrait_jpeg() else {
        println!("SKIPPED: rustface-0.1.7/test.png not found in cargo's registry");
        return;
    };

    let predictor = Predictor::load(None, Device::flex()).unwrap();
    let one_core = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (mut decode, mut detect, mut classify, mut total) = (vec![], vec![], vec![], vec![]);
    let mut faces = 0;
    one_core.install(|| {
        let mut detector = FaceDetector::new(DetectOptions::default()).unwrap();
        for i in 0..60 {
            let t0 = Instant::now();
            let img = image::load_from_memory(&jpeg).unwrap();
            let gray = img.to_luma8();
            let t1 = Instant::now();
            let boxes = detector.detect(&gray);
            let t2 = Instant::now();
            let planes: Vec<_> = boxes.iter().map(|b| face_plane(&gray, b, 0.2)).collect();
            let probs = predictor.classify(&planes);
            let t3 = Instant::now();
            faces = probs.len();
            if i >= 10 {
                decode.push((t1 - t0).as_secs_f64() * 1e3);
                detect.push((t2 - t1).as_secs_f64() * 1e3);
                classify.push((t3 - t2).as_secs_f64() * 1e3);
                total.push((t3 - t0).as_secs_f64() * 1e3);
            }
        }
    });
    println!("640x480 JPEG, {faces} face(s) found, one core, 50 runs after 10 warm-up:");
    println!("| stage | p50 ms | p95 ms |");
    println!("|---|---:|---:|");
    for (name, t) in [
        ("decode + gray", &mut decode),
        ("detect (SeetaFace)", &mut detect),
        ("crop + classify", &mut classify),
        ("total", &mut total),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} |",
            percentile(t, 0.5),
            percentile(t, 0.95)
        );
    }

    // What the smallest face size costs the detector (it scans an image pyramid down from
    // the scale where a min-face face fills its 40-pixel window).
    println!();
    println!("| --min-face | faces | detect p50 ms (one core) |");
    println!("|---:|---:|---:|");
    let gray = image::load_from_memory(&jpeg).unwrap().to_luma8();
    for min_face in [24, 40, 64, 96] {
        let mut times = Vec::new();
        let mut n = 0;
        one_core.install(|| {
            let mut d = FaceDetector::new(DetectOptions {
                min_face,
                ..DetectOptions::default()
            })
            .unwrap();
            for _ in 0..15 {
                let t = Instant::now();
                n = d.detect(&gray).len();
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        });
        println!("| {min_face} | {n} | {:.1} |", percentile(&mut times, 0.5));
    }

    // A folder of 64 such photos, all cores: decode, then detection in parallel, then one
    // batch of faces.
    let start = Instant::now();
    let rounds = 3;
    for _ in 0..rounds {
        let images: Vec<DynamicImage> = (0..64)
            .map(|_| image::load_from_memory(&jpeg).unwrap())
            .collect();
        predict_images(&images, &FaceOptions::default(), &predictor).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!();
    println!(
        "folder of 64 such photos, {} threads: {:.1} photos/s",
        rayon::current_num_threads(),
        (64 * rounds) as f64 / secs
    );
}
