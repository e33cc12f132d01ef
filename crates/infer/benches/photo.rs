//! Speed of `ferrite predict` on photos: decode + detect + align + classify.
//!
//! `cargo bench -p ferrite-infer --bench photo` builds a 640x480 JPEG with one face (about
//! 200 pixels) from the group photo in `photos/`, then prints p50/p95 milliseconds of each
//! stage on one core; the detector alone at each `--detect-size` on that photo and on a
//! 1600x900 crowd (the group photo); and photos per second for a folder on all cores.

mod fixtures;

use std::time::Instant;

use burn::tensor::Device;
use ferrite_infer::detect::DetectSize;
use ferrite_infer::predict::{FaceOptions, Predictor, classify_faces, frame_faces, predict_images};
use ferrite_infer::{DetectOptions, FaceDetector};
use image::DynamicImage;

fn percentile(times: &mut [f64], p: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    times[((times.len() - 1) as f64 * p).round() as usize]
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let jpeg = fixtures::portrait_jpeg();
    let predictor = Predictor::load(&[], Device::flex()).unwrap();
    let one_core = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let detector = FaceDetector::new(DetectOptions::default()).unwrap();
    let (mut decode, mut detect, mut classify, mut total) = (vec![], vec![], vec![], vec![]);
    let mut faces = 0;
    one_core.install(|| {
        for i in 0..60 {
            let t0 = Instant::now();
            let img = image::load_from_memory(&jpeg).unwrap();
            let t1 = Instant::now();
            let found = detector.detect(&img);
            let t2 = Instant::now();
            let preds = classify_faces(vec![frame_faces(&img, found, true)], &predictor);
            faces = preds[0].faces.len();
            if i >= 10 {
                decode.push((t1 - t0).as_secs_f64() * 1e3);
                detect.push((t2 - t1).as_secs_f64() * 1e3);
                classify.push(ms(t2));
                total.push(ms(t0));
            }
        }
    });
    println!(
        "640x480 JPEG, {faces} face(s) found, --detect-size {}, one core, 50 runs after 10 warm-up:",
        DetectOptions::default().size
    );
    println!("| stage | p50 ms | p95 ms |");
    println!("|---|---:|---:|");
    for (name, t) in [
        ("decode", &mut decode),
        ("detect (YuNet)", &mut detect),
        ("align + classify", &mut classify),
        ("total", &mut total),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} |",
            percentile(t, 0.5),
            percentile(t, 0.95)
        );
    }

    // The detector alone at each size, on the portrait and on a 1600x900 crowd.
    let portrait = image::load_from_memory(&jpeg).unwrap();
    let crowd = image::open(fixtures::group_photo())
        .unwrap()
        .crop_imm(33, 118, 1600, 900);
    println!();
    println!("| photo | --detect-size | faces | detect p50 ms (one core) |");
    println!("|---|---:|---:|---:|");
    for (name, img) in [("640x480 portrait", &portrait), ("1600x900 crowd", &crowd)] {
        for size in [
            DetectSize::Longest(160),
            DetectSize::Longest(320),
            DetectSize::Longest(480),
            DetectSize::Longest(640),
            DetectSize::Longest(960),
            DetectSize::Full,
        ] {
            let d = FaceDetector::new(DetectOptions {
                size,
                ..DetectOptions::default()
            })
            .unwrap();
            let (mut times, mut n) = (Vec::new(), 0);
            one_core.install(|| {
                for _ in 0..15 {
                    let t = Instant::now();
                    n = d.detect(img).faces.len();
                    times.push(ms(t));
                }
            });
            println!(
                "| {name} | {size} | {n} | {:.1} |",
                percentile(&mut times, 0.5)
            );
        }
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
