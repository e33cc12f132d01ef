//! `ferrite video`: emotions over time in video files, one timeline per tracked face.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use ferrite_infer::annotate::draw_face;
use ferrite_infer::detect::{FaceBox, LANDMARKS};
use ferrite_infer::predict::Predictor;
use ferrite_video::{Analysis, Encoder, Settings, check};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::cmd::predict::{FaceArgs, load_predictor};
use crate::cmd::train::{stop_on_ctrl_c, stopping};

/// Follow the faces of video files over time and name their emotions frame by frame.
///
/// Frames are decoded by the `ffmpeg` program (install it: `apt-get install ffmpeg`), with
/// their exact presentation times (variable frame rates and edit lists included); animated
/// GIF and PNG files need no ffmpeg. Each sampled frame's faces are found, framed and
/// classified as `ferrite predict` does, and followed from frame to frame: each face keeps a
/// `track` id while it is on screen (by box overlap and landmark distance, through up to a
/// second of missed detections).
///
/// Outputs, written as the video goes (constant memory) into temporary files that become
/// --csv / --json / --annotate only when the run completes: one row per sampled frame and
/// face, and one row with no face for a sampled frame without any, so gaps show; the video
/// with the faces labelled. A summary per track is printed: time on screen and the share of
/// each top emotion.
///
/// CSV columns: video, frame (index among the frames decoded, counted from --start), time
/// (seconds, the stream's own, also after --start), track, x, y, width, height, score, the
/// five landmarks' x and y, emotion, then one probability per class.
///
/// Examples:
///   ferrite video interview.mp4 --csv emotions.csv
///   ferrite video session.mov --fps 5 --start 60 --end 120 --json emotions.json
///   ferrite video interview.mp4 --annotate labelled.mp4 --plot timeline.png
// Verbatim: the example lines stay lines (clap would join them into one paragraph).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct VideoArgs {
    /// Video files (anything ffmpeg reads).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Model file [default: the built-in model]; several, comma-separated, run as an
    /// ensemble (probabilities averaged; they must share their classes).
    #[arg(long, value_name = "FILE[,FILE...]", value_delimiter = ',')]
    model: Vec<PathBuf>,
    /// Frames to analyse per second of video, sampled by time [default: every frame].
    #[arg(long, value_name = "N")]
    fps: Option<f64>,
    /// Start at this many seconds.
    #[arg(long, value_name = "SECONDS")]
    start: Option<f64>,
    /// Stop at this many seconds.
    #[arg(long, value_name = "SECONDS")]
    end: Option<f64>,
    /// Also give each track's probabilities smoothed over time: an exponential moving
    /// average with this time constant in seconds (each frame weighs 1 - e^(-dt/T)), in the
    /// columns smooth_<class> (CSV) or "smoothed" (JSON). The raw values are always kept.
    #[arg(long, value_name = "SECONDS")]
    smooth: Option<f64>,
    /// Write the rows as CSV to this file.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write the rows as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw the emotions over time to this PNG: one panel per track (the six longest),
    /// seconds on x, one line per class. (Keeps each track's probabilities in memory.)
    #[arg(long, value_name = "PNG")]
    plot: Option<PathBuf>,
    /// Write the video with each face boxed and labelled (track id, top emotion) to this
    /// file, H.264 in the container its extension names (.mp4, .mov, .mkv), every frame at
    /// its own time, with the source's audio. With --fps, frames between samples show the
    /// last sample's labels.
    #[arg(long, value_name = "VIDEO")]
    annotate: Option<PathBuf>,
    #[command(flatten)]
    faces: FaceArgs,
    /// cpu, or gpu[:N] in a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// CPU threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
}

/// An output file written under a temporary name beside it, renamed when complete.
struct Output {
    path: PathBuf,
    file: std::io::BufWriter<tempfile::NamedTempFile>,
}

impl Output {
    fn create(path: &Path) -> Result<Output> {
        let tmp = ferrite_data::atomic::temp_beside(path, "")
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Output {
            path: path.to_path_buf(),
            file: std::io::BufWriter::new(tmp),
        })
    }

    fn finish(self) -> Result<()> {
        let tmp = self.file.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

/// What the summary counts per track.
#[derive(Default)]
struct TrackSummary {
    first: f64,
    last: f64,
    frames: u64,
    top: BTreeMap<String, u64>,
    /// With --plot: (seconds, probabilities) per sampled frame.
    points: Vec<(f64, Vec<f32>)>,
}

pub fn run(args: VideoArgs) -> Result<i32> {
    if let Some(t) = args.threads {
        ferrite_model::device::set_threads(t).map_err(anyhow::Error::msg)?;
    }
    if args.smooth.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
        bail!("--smooth must be a positive number of seconds");
    }
    let settings = Settings {
        fps: args.fps,
        start: args.start,
        end: args.end,
        faces: args.faces.options(false)?,
    };
    settings.check().map_err(anyhow::Error::msg)?;
    // Check every video and the outputs before the long work starts.
    let durations = args
        .files
        .iter()
        .map(|f| check(f))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(out) = &args.annotate {
        for k in 0..args.files.len() {
            ferrite_video::encode::check_output(&numbered(out, k))?;
        }
    }
    let mut csv = args.csv.as_deref().map(Output::create).transpose()?;
    let mut json_out = args.json.as_deref().map(Output::create).transpose()?;
    let predictor = load_predictor(&args.model, &args.device)?;
    let classes = predictor.meta().classes.clone();
    if let Some(out) = &mut csv {
        let mut header = "video,frame,time,track,x,y,width,height,score".to_string();
        for l in LANDMARKS {
            header.push_str(&format!(",{l}_x,{l}_y"));
        }
        header.push_str(",emotion");
        for c in &classes {
            header.push_str(&format!(",{c}"));
        }
        if args.smooth.is_some() {
            for c in &classes {
                header.push_str(&format!(",smooth_{c}"));
            }
        }
        writeln!(out.file, "{header}")?;
    }
    if let Some(out) = &mut json_out {
        write!(
            out.file,
            "{{\"model\":{},\"classes\":{},\"rows\":[",
            json!(predictor.source),
            json!(classes)
        )?;
    }
    stop_on_ctrl_c()?;
    let mut rows_written = 0u64;
    for (k, file) in args.files.iter().enumerate() {
        let name = file.display().to_string();
        let annotate = args.annotate.as_ref().map(|out| numbered(out, k));
        let video = (file.as_path(), durations[k], annotate.as_deref());
        let summary = analyse(video, &args, &settings, &predictor, |row| {
            if let Some(out) = &mut csv {
                writeln!(
                    out.file,
                    "{}",
                    csv_row(&name, &row, &classes, args.smooth.is_some())
                )?;
            }
            if let Some(out) = &mut json_out {
                if rows_written > 0 {
                    write!(out.file, ",")?;
                }
                write!(out.file, "{}", json_row(&name, &row, &classes))?;
            }
            rows_written += 1;
            Ok(())
        })?;
        let Some(summary) = summary else {
            eprintln!(
                "interrupted: no output file written{}",
                if args.csv.is_some() || args.json.is_some() || args.annotate.is_some() {
                    " (the partial ones are removed)"
                } else {
                    ""
                }
            );
            return Ok(130);
        };
        print_summary(&name, &summary);
        if let Some(png) = &args.plot {
            let path = numbered(png, k);
            let tracks: Vec<ferrite_train::plot::Track> = summary
                .into_iter()
                .map(|(id, t)| ferrite_train::plot::Track {
                    id,
                    points: t.points,
                })
                .collect();
            let span = (
                args.start.unwrap_or(0.0),
                tracks
                    .iter()
                    .flat_map(|t| t.points.last().map(|p| p.0))
                    .fold(args.start.unwrap_or(0.0) + 1.0, f64::max),
            );
            let title = file
                .file_name()
                .map_or(name.clone(), |n| n.to_string_lossy().into_owned());
            ferrite_train::plot::timeline(&tracks, &classes, span, &title, &path)
                .map_err(anyhow::Error::msg)?;
        }
    }
    if let Some(out) = csv {
        out.finish()?;
    }
    if let Some(mut out) = json_out {
        write!(out.file, "]}}")?;
        out.finish()?;
    }
    Ok(0)
}

/// With several videos, one output each: the first at `path`, the later ones numbered
/// (`timeline.png`, `timeline-2.png`...).
fn numbered(path: &Path, k: usize) -> PathBuf {
    if k == 0 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(match path.extension() {
        Some(ext) => format!("{stem}-{}.{}", k + 1, ext.to_string_lossy()),
        None => format!("{stem}-{}", k + 1),
    })
}

/// One output row: a face of a sampled frame, or the frame alone when it has none.
struct Row {
    frame: u64,
    time: f64,
    face: Option<FaceRow>,
}

struct FaceRow {
    track: u64,
    bbox: FaceBox,
    probabilities: Vec<f32>,
    top: usize,
    /// With --smooth: the track's moving average up to this frame.
    smoothed: Option<Vec<f32>>,
}

/// Runs one video (its file, duration when known, and --annotate output), handing each
/// row to `emit`; the per-track summary, or `None` when stopped by Ctrl-C.
fn analyse(
    (file, duration, annotate): (&Path, Option<f64>, Option<&Path>),
    args: &VideoArgs,
    settings: &Settings,
    predictor: &Predictor,
    mut emit: impl FnMut(Row) -> Result<()>,
) -> Result<Option<BTreeMap<u64, TrackSummary>>> {
    let mut analysis = Analysis::open(file, settings)?;
    let bar = progress(duration, args);
    let mut summary: BTreeMap<u64, TrackSummary> = BTreeMap::new();
    // Per track: the time and smoothed probabilities of its last row.
    let mut smoothing: BTreeMap<u64, (f64, Vec<f32>)> = BTreeMap::new();
    // With --annotate: the encoder (opened at the first frame, which gives the size) and
    // the labels of the last sampled frame, drawn on the frames until the next sample.
    let mut encoder: Option<Encoder> = None;
    let mut labels: Vec<(FaceBox, usize, String)> = Vec::new();
    let mut annotating = Duration::ZERO;
    let started = Instant::now();
    while let Some(frame) = analysis.next_frame(predictor) {
        let frame = frame?;
        if stopping() {
            bar.finish_and_clear();
            return Ok(None);
        }
        bar.set_position((frame.time * 1000.0).max(0.0) as u64);
        if let Some(faces) = frame.faces {
            if faces.is_empty() {
                emit(Row {
                    frame: frame.index,
                    time: frame.time,
                    face: None,
                })?;
            }
            labels.clear();
            for f in faces {
                let s = summary.entry(f.track).or_insert_with(|| TrackSummary {
                    first: frame.time,
                    ..TrackSummary::default()
                });
                s.last = frame.time;
                s.frames += 1;
                if args.plot.is_some() {
                    s.points.push((frame.time, f.probabilities.clone()));
                }
                let class = &predictor.meta().classes[f.top];
                *s.top.entry(class.clone()).or_default() += 1;
                if annotate.is_some() {
                    let percent = f.probabilities[f.top] * 100.0;
                    labels.push((f.bbox, f.top, format!("#{} {class} {percent:.0}%", f.track)));
                }
                let smoothed = args.smooth.map(|tau| {
                    let state = smoothing
                        .entry(f.track)
                        .or_insert_with(|| (frame.time, f.probabilities.clone()));
                    let k = 1.0 - (-(frame.time - state.0).max(0.0) / tau).exp();
                    for (m, p) in state.1.iter_mut().zip(&f.probabilities) {
                        *m += k as f32 * (p - *m);
                    }
                    state.0 = frame.time;
                    state.1.clone()
                });
                emit(Row {
                    frame: frame.index,
                    time: frame.time,
                    face: Some(FaceRow {
                        track: f.track,
                        bbox: f.bbox,
                        top: f.top,
                        probabilities: f.probabilities,
                        smoothed,
                    }),
                })?;
            }
        }
        if let Some(out) = annotate {
            let clock = Instant::now();
            draw_and_encode(
                &mut encoder,
                out,
                file,
                args,
                frame.image,
                &labels,
                frame.time,
            )?;
            annotating += clock.elapsed();
        }
        bar.set_message(format!(
            "{:.1} frames/s",
            analysis.sampled as f64 / started.elapsed().as_secs_f64()
        ));
    }
    if let Some(encoder) = encoder {
        let clock = Instant::now();
        encoder.finish()?;
        annotating += clock.elapsed();
    }
    bar.finish_and_clear();
    let (seconds, sampled) = (started.elapsed().as_secs_f64(), analysis.sampled);
    let per_frame = |d: Duration| d.as_secs_f64() * 1e3 / sampled.max(1) as f64;
    let time = analysis.timings;
    eprintln!(
        "{}: {sampled} frames analysed in {seconds:.1} s ({:.1} frames/s); per analysed frame: \
         decode wait {:.1} ms, detect {:.1} ms, classify {:.1} ms{}",
        file.display(),
        sampled as f64 / seconds,
        per_frame(time.decode),
        per_frame(time.detect),
        per_frame(time.classify),
        if annotate.is_some() {
            format!(", annotate {:.1} ms", per_frame(annotating))
        } else {
            String::new()
        }
    );
    Ok(Some(summary))
}

/// Draws `labels` on a frame and hands it to the --annotate encoder, opening that at the
/// first frame.
fn draw_and_encode(
    encoder: &mut Option<Encoder>,
    out: &Path,
    source: &Path,
    args: &VideoArgs,
    mut image: RgbImage,
    labels: &[(FaceBox, usize, String)],
    time: f64,
) -> Result<()> {
    if encoder.is_none() {
        *encoder = Some(Encoder::create(
            out,
            source,
            image.dimensions(),
            args.start,
            args.end,
        )?);
    }
    for (bbox, top, label) in labels {
        draw_face(&mut image, bbox, *top, label);
    }
    encoder
        .as_mut()
        .expect("opened above")
        .write(time, &image)?;
    Ok(())
}

fn progress(duration: Option<f64>, args: &VideoArgs) -> ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let end = args.end.or(duration).unwrap_or(0.0);
    ProgressBar::new((end * 1000.0) as u64).with_style(
        ProgressStyle::with_template("{bar:30} {msg} [{elapsed} < {eta}]").expect("valid template"),
    )
}

fn csv_row(video: &str, row: &Row, classes: &[String], smooth: bool) -> String {
    let mut out = format!(
        "{},{},{:.6}",
        crate::cmd::predict::csv_field(video),
        row.frame,
        row.time
    );
    let Some(f) = &row.face else {
        let empty = 6 + 10 + 1 + classes.len() * if smooth { 2 } else { 1 };
        return out + &",".repeat(empty);
    };
    let b = &f.bbox;
    out.push_str(&format!(
        ",{},{:.1},{:.1},{:.1},{:.1},{:.4}",
        f.track, b.x, b.y, b.width, b.height, b.score
    ));
    for v in b.landmarks.iter().flatten() {
        out.push_str(&format!(",{v:.1}"));
    }
    out.push_str(&format!(",{}", classes[f.top]));
    for p in f.probabilities.iter().chain(f.smoothed.iter().flatten()) {
        out.push_str(&format!(",{p:.5}"));
    }
    out
}

fn json_row(video: &str, row: &Row, classes: &[String]) -> Value {
    let mut v = json!({"video": video, "frame": row.frame, "time": row.time});
    if let Some(f) = &row.face {
        let b = &f.bbox;
        let by_class = |p: &[f32]| -> Value {
            classes
                .iter()
                .zip(p)
                .map(|(c, p)| (c.clone(), json!(p)))
                .collect()
        };
        v["track"] = json!(f.track);
        v["box"] = json!({"x": b.x, "y": b.y, "width": b.width, "height": b.height});
        v["score"] = json!(b.score);
        v["landmarks"] = LANDMARKS
            .iter()
            .zip(b.landmarks)
            .map(|(n, p)| (n.to_string(), json!(p)))
            .collect();
        v["emotion"] = json!(classes[f.top]);
        v["probabilities"] = by_class(&f.probabilities);
        if let Some(m) = &f.smoothed {
            v["smoothed"] = by_class(m);
        }
    }
    v
}

fn print_summary(video: &str, tracks: &BTreeMap<u64, TrackSummary>) {
    println!("{video}: {} track(s)", tracks.len());
    for (id, t) in tracks {
        let mut shares: Vec<(&String, &u64)> = t.top.iter().collect();
        shares.sort_by(|a, b| b.1.cmp(a.1));
        let shares: Vec<String> = shares
            .iter()
            .map(|(c, n)| format!("{c} {:.0} %", 100.0 * **n as f64 / t.frames as f64))
            .collect();
        println!(
            "  track {id}: {:.2}-{:.2} s, {} frames; {}",
            t.first,
            t.last,
            t.frames,
            shares.join(", ")
        );
    }
}
