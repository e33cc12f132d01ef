//! `ferrite predict`: emotions of the faces in photos.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use ferrite_data::decode::{
    DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, decode_image, read_image_bytes,
};
use ferrite_infer::detect::{DetectOptions, DetectSize, LANDMARKS, MAX_FACES};
use ferrite_infer::predict::{FaceOptions, ImagePrediction, Predictor, predict_images};
use image::DynamicImage;
use serde_json::{Value, json};

use crate::output::{align_numbers, table};

/// Find the faces in photos and name their emotions.
///
/// Each PATH is an image file (PNG, JPEG, BMP, GIF, TIFF, WebP, PNM), a folder (searched
/// recursively for images) or `-` for one image on standard input (files up to 64 MiB).
/// Every face is found by the built-in YuNet detector (box, score, five landmarks), cut as a
/// square around its box framed like a FER2013 face, turned upright by the line through its
/// eyes (not with --no-align), turned gray, sampled to 48x48 and classified; faces of many
/// images share one batch. Without --model the built-in model is used (`ferrite info
/// --model` describes a model file).
///
/// An image without faces is reported as such; a file that cannot be read is reported on
/// standard error and the others are still processed (exit code 1 then).
///
/// Examples:
///   ferrite predict group.jpg
///   ferrite predict photos/ --json > emotions.json
///   ferrite predict photos/ --csv --annotate annotated/
///   ferrite predict --no-detect ck_faces/ --model models/ferplus.safetensors
// Verbatim: the example lines stay lines (clap would join them into one paragraph).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct PredictArgs {
    /// Images, folders, or - for standard input.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// Model file [default: the built-in model]; several, comma-separated, run as an
    /// ensemble (probabilities averaged; they must share their classes).
    #[arg(long, value_name = "FILE[,FILE...]", value_delimiter = ',')]
    model: Vec<PathBuf>,
    /// Treat each image as one face crop (no detection), as in CK+ or FER2013 exports.
    #[arg(long)]
    no_detect: bool,
    #[command(flatten)]
    faces: FaceArgs,
    /// Classes listed per face in the table (JSON and CSV always give all).
    #[arg(long, value_name = "K", default_value_t = 3)]
    top: usize,
    /// Print one JSON document instead of a table.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (one row per face) instead of a table.
    #[arg(long)]
    csv: bool,
    /// Also write each image with its faces boxed and labelled, as PNG, into this folder.
    #[arg(long, value_name = "DIR")]
    annotate: Option<PathBuf>,
    /// cpu, or gpu[:N] in a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// CPU threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
}

/// How faces are found and framed: shared by `predict` and `video`.
#[derive(Debug, Clone, clap::Args)]
pub struct FaceArgs {
    /// Smallest face to keep: the longer side of its box, in pixels of the photo.
    #[arg(long, value_name = "PX", default_value_t = DetectOptions::default().min_face)]
    min_face: u32,
    /// Smallest detector score to keep, 0 to 1 (0.9 and up: clear faces only; lower finds
    /// more small, blurred and turned faces, and more false ones).
    #[arg(long, value_name = "S", default_value_t = DetectOptions::default().min_score)]
    min_score: f32,
    /// Longest side, in pixels, the detector sees; larger photos are shrunk for it. Faces
    /// below about 10 pixels at that size are missed: `full` keeps the photo's own size (for
    /// crowds of small faces; slower on large photos).
    #[arg(long, value_name = "PX|full", default_value_t = DetectOptions::default().size)]
    detect_size: DetectSize,
    /// Frame each face by its box instead of turning it upright by its landmarks.
    #[arg(long)]
    no_align: bool,
}

impl FaceArgs {
    /// The options, checked; `no_detect` takes each image whole as one face.
    pub fn options(&self, no_detect: bool) -> Result<FaceOptions> {
        let detect = DetectOptions {
            min_face: self.min_face,
            min_score: self.min_score,
            size: self.detect_size,
        };
        detect.check().map_err(anyhow::Error::msg)?;
        Ok(FaceOptions {
            detect: (!no_detect).then_some(detect),
            align: !self.no_align,
        })
    }
}

/// Images decoded and predicted together (bounds memory on large folders).
const GROUP: usize = 32;

const IMAGE_EXTENSIONS: [&str; 11] = [
    "png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "pnm", "pgm", "ppm",
];

pub fn run(args: PredictArgs) -> Result<i32> {
    if let Some(t) = args.threads {
        ferrite_model::device::set_threads(t).map_err(anyhow::Error::msg)?;
    }
    if args.top == 0 {
        anyhow::bail!("--top must be at least 1");
    }
    let predictor = load_predictor(&args.model, &args.device)?;
    let classes = predictor.meta().classes.clone();
    let options = args.faces.options(args.no_detect)?;
    if let Some(dir) = &args.annotate {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let inputs = list_inputs(&args.paths);
    let mut failed = 0usize;
    let mut json_images = Vec::new();
    let mut annotated_names = HashSet::new();
    if args.csv {
        let mut header = ["path", "face", "x", "y", "width", "height", "score"].join(",");
        for l in LANDMARKS {
            header.push_str(&format!(",{l}_x,{l}_y"));
        }
        header.push_str(",top");
        for c in &classes {
            header.push(',');
            header.push_str(&csv_field(c));
        }
        println!("{header}");
    }
    let start = Instant::now();
    let (mut n_images, mut n_faces) = (0usize, 0usize);
    for group in inputs.chunks(GROUP) {
        let mut decoded: Vec<(String, DynamicImage)> = Vec::new();
        for input in group {
            match input {
                Ok(path) => match read_image(path) {
                    Ok(img) => decoded.push((display(path), img)),
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: {}: {e:#}", display(path));
                        if args.json {
                            json_images
                                .push(json!({"path": display(path), "error": format!("{e:#}")}));
                        }
                    }
                },
                Err(e) => {
                    failed += 1;
                    eprintln!("error: {e}");
                }
            }
        }
        let images: Vec<DynamicImage> = decoded.iter().map(|(_, img)| img.clone()).collect();
        let predictions =
            predict_images(&images, &options, &predictor).map_err(anyhow::Error::msg)?;
        for ((path, img), pred) in decoded.iter().zip(&predictions) {
            n_images += 1;
            if pred.capped {
                eprintln!(
                    "note: {path}: more than {MAX_FACES} faces; only the {MAX_FACES} best-scoring are reported"
                );
            }
            n_faces += pred.faces.len();
            if args.json {
                json_images.push(image_json(path, pred, &classes));
            } else if args.csv {
                print_csv(path, pred);
            } else {
                print_table(path, pred, &classes, args.top, args.no_detect);
            }
            if let Some(dir) = &args.annotate {
                let out = dir.join(annotated_name(path, &mut annotated_names));
                let picture = ferrite_infer::annotate::annotate(img, pred, &classes);
                ferrite_data::atomic::save_png_atomic(&picture, &out)
                    .with_context(|| format!("cannot write {}", out.display()))?;
            }
        }
    }
    if args.json {
        let doc = json!({
            "model": {
                "source": predictor.source,
                "arch": predictor.meta().arch.arch.to_string(),
                "dataset": predictor.meta().dataset,
                "classes": classes,
            },
            "images": json_images,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    if !args.json && !args.csv {
        eprintln!(
            "{n_images} image(s), {n_faces} face(s) in {:.2} s with the {} model ({}, {}){}",
            start.elapsed().as_secs_f64(),
            predictor.source,
            predictor.meta().arch.arch,
            predictor.meta().dataset,
            if failed > 0 {
                format!("; {failed} file(s) failed")
            } else {
                String::new()
            }
        );
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

/// The files to read: each PATH, or the images under a folder, sorted; `-` is standard input.
fn list_inputs(paths: &[PathBuf]) -> Vec<std::result::Result<PathBuf, String>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" || !p.is_dir() {
            out.push(Ok(p.clone()));
            continue;
        }
        let mut found: Vec<PathBuf> = Vec::new();
        for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
            match entry {
                Ok(e) if e.file_type().is_file() && is_image_name(e.path()) => {
                    found.push(e.into_path())
                }
                Ok(_) => {}
                Err(e) => out.push(Err(format!("{}: {e}", p.display()))),
            }
        }
        if found.is_empty() {
            out.push(Err(format!(
                "{}: no image files in this folder",
                p.display()
            )));
        }
        out.extend(found.into_iter().map(Ok));
    }
    out
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn display(p: &Path) -> String {
    if p.as_os_str() == "-" {
        "-".into()
    } else {
        p.display().to_string()
    }
}

/// The model of `--model` (the built-in one when `None`) on the device of `--device`.
pub fn load_predictor(models: &[PathBuf], device: &str) -> Result<Predictor> {
    let device = ferrite_model::device::parse(device).map_err(anyhow::Error::msg)?;
    Predictor::load(models, device).with_context(|| {
        if models.is_empty() {
            "cannot load the built-in model".to_string()
        } else {
            format!(
                "cannot load model {}",
                ferrite_model::ensemble::describe(models)
            )
        }
    })
}

/// Decodes a file (by its content, whatever its extension) or standard input, reading at
/// most [`DEFAULT_MAX_FILE_BYTES`].
fn read_image(path: &Path) -> Result<DynamicImage> {
    let bytes = if path.as_os_str() == "-" {
        read_image_bytes(std::io::stdin().lock(), DEFAULT_MAX_FILE_BYTES)?
    } else {
        let file = std::fs::File::open(path).context("cannot read the file")?;
        read_image_bytes(file, DEFAULT_MAX_FILE_BYTES)?
    };
    Ok(decode_image(&bytes, DEFAULT_MAX_PIXELS)?)
}

fn print_table(
    path: &str,
    pred: &ImagePrediction,
    classes: &[String],
    top: usize,
    no_detect: bool,
) {
    let n = pred.faces.len();
    let what = if no_detect {
        String::new()
    } else {
        format!(": {n} face{}", if n == 1 { "" } else { "s" })
    };
    println!("{path} ({}x{}){what}", pred.width, pred.height);
    if n == 0 {
        println!();
        return;
    }
    let mut header = vec!["face".to_string()];
    if !no_detect {
        header.extend(["box (x, y, w, h)".into(), "score".into()]);
    }
    header.extend(["emotion".to_string(), "p".to_string(), "next".to_string()]);
    let mut t = table(header);
    for (i, f) in pred.faces.iter().enumerate() {
        let mut order: Vec<usize> = (0..classes.len()).collect();
        order.sort_by(|&a, &b| f.probabilities[b].total_cmp(&f.probabilities[a]));
        let next: Vec<String> = order
            .iter()
            .skip(1)
            .take(top.saturating_sub(1))
            .map(|&c| format!("{} {:.2}", classes[c], f.probabilities[c]))
            .collect();
        let mut row = vec![(i + 1).to_string()];
        if let Some(b) = f.bbox {
            row.push(format!(
                "{:.0}, {:.0}, {:.0}, {:.0}",
                b.x, b.y, b.width, b.height
            ));
            row.push(format!("{:.2}", b.score));
        }
        row.extend([
            classes[f.top].clone(),
            format!("{:.2}", f.probabilities[f.top]),
            next.join(", "),
        ]);
        t.add_row(row);
    }
    align_numbers(&mut t);
    println!("{t}\n");
}

fn print_csv(path: &str, pred: &ImagePrediction) {
    // path, face, box (4), score, landmarks (10), top: 18 columns before the probabilities.
    if pred.faces.is_empty() {
        println!("{}{}", csv_field(path), ",".repeat(17));
    }
    for (i, f) in pred.faces.iter().enumerate() {
        let detected: Vec<String> = match f.bbox {
            Some(b) => [b.x, b.y, b.width, b.height]
                .iter()
                .map(|v| format!("{v:.1}"))
                .chain([format!("{:.4}", b.score)])
                .chain(b.landmarks.iter().flatten().map(|v| format!("{v:.1}")))
                .collect(),
            None => vec![String::new(); 15],
        };
        let mut row = format!(
            "{},{},{},{}",
            csv_field(path),
            i + 1,
            detected.join(","),
            f.top
        );
        for p in &f.probabilities {
            row.push_str(&format!(",{p:.5}"));
        }
        println!("{row}");
    }
}

pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn image_json(path: &str, pred: &ImagePrediction, classes: &[String]) -> Value {
    let mut doc = pred.to_json(classes);
    doc["path"] = json!(path);
    doc
}

/// `photo.jpg` → `photo.png`, made unique within the run (`photo-2.png`, ...).
fn annotated_name(path: &str, used: &mut HashSet<String>) -> String {
    let stem = if path == "-" {
        "stdin".to_string()
    } else {
        Path::new(path)
            .file_stem()
            .map_or("image".into(), |s| s.to_string_lossy().into_owned())
    };
    let mut name = format!("{stem}.png");
    let mut k = 2;
    while !used.insert(name.clone()) {
        name = format!("{stem}-{k}.png");
        k += 1;
    }
    name
}
