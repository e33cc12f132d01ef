//! How to frame a detected face for the classifier: the measurements behind `src/align.rs`.
//!
//!     cargo run --release -p ferrite-infer --example framing_study -- fer2013.csv.gz [MODEL [FERPLUS_VOTES]]
//!
//! FER2013 faces are shown as photos (enlarged 4x on a 320x320 gray canvas,
//! [`face_on_canvas`]) and detected. On the first 4,000 Training faces it prints how large
//! the 48x48 frame is against YuNet's box ([`BOX_SCALE`]). On PublicTest (the split for
//! choices) it scores MODEL (default `models/fer2013.safetensors`) on the faces found,
//! framed each way, beside the faces as given and the exact inverse of the canvas (what
//! resampling alone costs): the box's square, the box's square turned upright by the eye
//! line (the default), and the usual five-point alignment onto a template of where the
//! landmarks fall on average (least-squares similarity, Umeyama), which `align.rs` does not
//! use. With FERPlus's votes (fer2013new.csv) the faces carry FERPlus's majority labels,
//! for a FERPlus model; the model must name the dataset's classes in the dataset's order.

use burn::tensor::Device;
use ferrite_data::face::{PIXELS, SIDE};
use ferrite_data::{Samples, SplitRole};
use ferrite_infer::align::{BOX_SCALE, Similarity, face_on_canvas, face_plane, warp};
use ferrite_infer::detect::{DetectOptions, FaceBox, FaceDetector};
use ferrite_infer::predict::Predictor;
use ferrite_model::predict::argmax;
use image::{DynamicImage, GrayImage};
use rayon::prelude::*;

const SCALE: u32 = 4;
const CANVAS: u32 = 320;

/// The face found on the canvas of `plane`: the largest, and centred.
fn detect(detector: &FaceDetector, plane: &[u8]) -> Option<(GrayImage, u32, FaceBox)> {
    let (photo, at) = face_on_canvas(plane, SCALE, CANVAS);
    let face = *detector
        .detect(&DynamicImage::ImageLuma8(photo.clone()))
        .faces
        .first()?;
    let c = CANVAS as f32 / 2.0;
    let off = (face.x + face.width / 2.0 - c)
        .abs()
        .max((face.y + face.height / 2.0 - c).abs());
    (off < (SIDE as u32 * SCALE / 4) as f32).then_some((photo, at, face))
}

/// The least-squares similarity taking `from` onto `to` (Umeyama's closed form in 2-D).
fn fit(from: &[[f32; 2]], to: &[[f32; 2]]) -> Similarity {
    let n = from.len() as f32;
    let mean = |p: &[[f32; 2]]| {
        let s = p.iter().fold([0.0, 0.0], |s, q| [s[0] + q[0], s[1] + q[1]]);
        [s[0] / n, s[1] / n]
    };
    let (mf, mt) = (mean(from), mean(to));
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (p, q) in from.iter().zip(to) {
        let (px, py, qx, qy) = (p[0] - mf[0], p[1] - mf[1], q[0] - mt[0], q[1] - mt[1]);
        dot += px * qx + py * qy;
        cross += px * qy - py * qx;
        norm += px * px + py * py;
    }
    let (a, b) = (dot / norm, cross / norm);
    Similarity {
        a,
        b,
        tx: mt[0] - (a * mf[0] - b * mf[1]),
        ty: mt[1] - (b * mf[0] + a * mf[1]),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let csv = args
        .get(1)
        .expect("usage: framing_study fer2013.csv[.gz] [MODEL [FERPLUS_VOTES]]");
    let model = args
        .get(2)
        .cloned()
        .unwrap_or("models/fer2013.safetensors".into());
    let data = match args.get(3) {
        Some(votes) => ferrite_data::ferplus::load_ferplus(
            csv.as_ref(),
            votes.as_ref(),
            ferrite_data::ferplus::LabelMode::Majority,
        )
        .expect("readable fer2013.csv and FERPlus votes"),
        None => ferrite_data::fer2013::load_fer2013(csv.as_ref()).expect("readable fer2013.csv"),
    };
    let detector = FaceDetector::new(DetectOptions::default()).unwrap();

    // Training: the frame against the box, and the template (mirror-averaged).
    let train = &data.split_by_role(SplitRole::Train).unwrap().samples;
    let n = 4000.min(train.len());
    let found: Vec<(f32, [[f32; 2]; 5])> = (0..n)
        .into_par_iter()
        .filter_map(|i| {
            let (_, at, f) = detect(&detector, train.image(i))?;
            let marks = f.landmarks.map(|[x, y]| {
                [
                    (x - at as f32) / SCALE as f32,
                    (y - at as f32) / SCALE as f32,
                ]
            });
            Some(((SIDE as u32 * SCALE) as f32 / f.width.max(f.height), marks))
        })
        .collect();
    let mut ratios: Vec<f32> = found.iter().map(|f| f.0).collect();
    ratios.sort_by(f32::total_cmp);
    println!(
        "Training: {} of {n} faces found; frame / box's longer side: median {:.3}, mean {:.3} (BOX_SCALE = {BOX_SCALE})",
        found.len(),
        ratios[ratios.len() / 2],
        ratios.iter().sum::<f32>() / ratios.len() as f32
    );
    let k = found.len() as f32;
    let mut template = [[0f32; 2]; 5];
    for (_, m) in &found {
        let mirror = [m[1], m[0], m[2], m[4], m[3]].map(|[x, y]| [SIDE as f32 - x, y]);
        for j in 0..5 {
            for d in 0..2 {
                template[j][d] += (m[j][d] + mirror[j][d]) / (2.0 * k);
            }
        }
    }
    println!("five-point template on the 48x48 plane: {template:.2?}");

    // PublicTest: accuracy on the faces found, framed each way.
    let val = &data.split_by_role(SplitRole::Val).unwrap().samples;
    let predictor = Predictor::load(&[model.into()], Device::flex())
        .expect("a model file (the default path is relative to the repository root)");
    // Scored by class index: the model's classes must be the dataset's, in its order.
    assert_eq!(
        predictor.meta().classes,
        data.classes,
        "the model's classes are not {}'s",
        data.name
    );
    let ways = [
        "as given (48x48)",
        "exact inverse of the canvas",
        "box square",
        "box square, upright by the eyes (default)",
        "five-point template",
    ];
    let framed: Vec<Option<Vec<[u8; PIXELS]>>> = (0..val.len())
        .into_par_iter()
        .map(|i| {
            let (photo, at, f) = detect(&detector, val.image(i))?;
            let exact = Similarity {
                a: SCALE as f32,
                b: 0.0,
                tx: at as f32,
                ty: at as f32,
            };
            Some(vec![
                val.image(i).try_into().unwrap(),
                warp(&photo, &exact),
                face_plane(&photo, &f, false),
                face_plane(&photo, &f, true),
                warp(&photo, &fit(&template, &f.landmarks)),
            ])
        })
        .collect();
    let kept: Vec<usize> = (0..val.len()).filter(|&i| framed[i].is_some()).collect();
    println!(
        "PublicTest: {} of {} faces found; accuracy on them:",
        kept.len(),
        val.len()
    );
    for (w, name) in ways.iter().enumerate() {
        let planes: Vec<[u8; PIXELS]> = kept
            .iter()
            .map(|&i| framed[i].as_ref().unwrap()[w])
            .collect();
        let hits = accuracy(&predictor.classify(&planes), val, &kept);
        println!("  {name}: {:.2} %", 100.0 * hits);
    }
}

fn accuracy(probs: &[Vec<f32>], samples: &Samples, kept: &[usize]) -> f64 {
    let hits = kept
        .iter()
        .zip(probs)
        .filter(|(i, p)| argmax(p) == samples.label(**i) as usize)
        .count();
    hits as f64 / kept.len() as f64
}
