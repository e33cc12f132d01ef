//! `ferrite video` on the real clips of `../shared/data/video` (read there, never copied):
//! tracks, exact times, frames without faces, two people at once, and bad input. Needs the
//! `ffmpeg` program (`.ci/run` installs it); without the clips the tests say SKIPPED (a
//! failure under `FERRITE_REQUIRE_DATA=1`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ferrite, real_file};

/// A shared clip, when it and the `ffmpeg` program are there (SKIPPED otherwise; a failure
/// under `FERRITE_REQUIRE_DATA=1`).
fn clip(name: &str) -> Option<PathBuf> {
    let found = Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("FERRITE_REQUIRE_DATA").is_ok_and(|v| v == "1") {
            panic!("ffmpeg/ffprobe not found and FERRITE_REQUIRE_DATA=1");
        }
        eprintln!("SKIPPED: the ffmpeg program is not installed");
        return None;
    }
    real_file(&format!("video/{name}"))
}

/// The rows of a `--csv` output, as column -> value maps.
fn rows(csv: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

fn run_video(args: &[&str]) -> (Vec<BTreeMap<String, String>>, String) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    let mut all = vec!["video"];
    all.extend_from_slice(args);
    all.extend(["--csv", csv.to_str().unwrap()]);
    let out = ferrite(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (rows(&csv), String::from_utf8(out.stdout).unwrap())
}

fn time(r: &BTreeMap<String, String>) -> f64 {
    r["time"].parse().unwrap()
}

/// Presentation times of every frame, from ffprobe.
fn ffprobe_times(path: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=best_effort_timestamp_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

#[test]
fn one_woman_is_one_track_sad_at_first_and_happy_at_the_end() {
    let Some(video) = clip("WolfgangLanger_Pexels.mp4") else {
        return;
    };
    let (rows, summary) = run_video(&[video.to_str().unwrap(), "--fps", "10"]);
    let tracks: BTreeSet<&str> = rows.iter().map(|r| r["track"].as_str()).collect();
    assert_eq!(tracks, BTreeSet::from(["1"]), "{summary}");
    assert!(
        rows.len() >= 190,
        "{} rows at 10 frames/s over 19.7 s",
        rows.len()
    );
    let dominant = |from: f64, to: f64| {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for r in rows.iter().filter(|r| (from..to).contains(&time(r))) {
            *count.entry(r["emotion"].as_str()).or_default() += 1;
        }
        count.into_iter().max_by_key(|c| c.1).unwrap().0.to_string()
    };
    let (first, last) = (dominant(0.0, 3.0), dominant(16.7, 20.0));
    assert_eq!(last, "happiness");
    assert_ne!(first, last);
    assert!(summary.contains("track 1"), "{summary}");
}

#[test]
fn variable_frame_rate_times_are_the_streams_and_the_track_ends_with_the_face() {
    let Some(video) = clip("face_noface.mov") else {
        return;
    };
    let (rows, _) = run_video(&[video.to_str().unwrap()]);
    // One row per frame here (one face or none), at exactly ffprobe's times.
    let want = ffprobe_times(&video);
    let got: Vec<f64> = rows.iter().map(time).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
    assert!(
        got.windows(2).all(|w| w[1] > w[0]),
        "times strictly increase"
    );
    // The face comes first; once it is gone (the title card), rows have no face.
    let last_face = rows.iter().rposition(|r| !r["track"].is_empty()).unwrap();
    assert!(
        last_face > 10 && last_face + 10 < rows.len(),
        "face until row {last_face} of {}",
        rows.len()
    );
    assert!(
        rows[last_face + 1..]
            .iter()
            .all(|r| r["track"].is_empty() && r["emotion"].is_empty())
    );
    assert!(rows[..5].iter().all(|r| r["track"] == "1"));
}

#[test]
fn a_video_without_faces_has_a_row_for_every_frame() {
    let Some(video) = clip("no_face.mp4") else {
        return;
    };
    let (rows, summary) = run_video(&[video.to_str().unwrap()]);
    assert_eq!(rows.len(), ffprobe_times(&video).len());
    assert!(rows.iter().all(|r| r["track"].is_empty()));
    assert!(summary.contains("0 track(s)"), "{summary}");
}

#[test]
fn two_people_side_by_side_are_two_tracks_that_never_swap() {
    let (Some(a), Some(b)) = (clip("single_face.mp4"), clip("WolfgangLanger_Pexels.mp4")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("both.mp4");
    // Two seconds of each at 24 frames/s, side by side (1280x360).
    let made = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-t", "2", "-i"])
        .arg(&a)
        .args(["-t", "2", "-i"])
        .arg(&b)
        .args([
            "-filter_complex",
            "[0:v]fps=24[a];[1:v]fps=24[b];[a][b]hstack=inputs=2",
            "-an",
        ])
        .arg(&both)
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    let (rows, _) = run_video(&[both.to_str().unwrap()]);
    // Track by side: the man on the left, the woman on the right (640 pixels each).
    let mut side: BTreeMap<String, BTreeSet<bool>> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r["track"].is_empty()) {
        let x: f64 = r["x"].parse().unwrap();
        side.entry(r["track"].clone())
            .or_default()
            .insert(x >= 640.0);
    }
    assert_eq!(side.len(), 2, "{side:?}");
    assert!(
        side.values().all(|s| s.len() == 1),
        "a track changed sides: {side:?}"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_no_output_file() {
    let Some(video) = clip("single_face.mp4") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, b"this is not a video").unwrap();
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let csv = dir.path().join("out.csv");
    for bad in [&text, &empty] {
        let out = ferrite(&[
            "video",
            bad.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(bad.to_str().unwrap()) && stderr.contains("not a video"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"));
        assert!(!csv.exists());
    }
    // Cut in half: the frames that are there are analysed, then a clear error, no file.
    let bytes = std::fs::read(&video).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = ferrite(&[
        "video",
        cut.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cut.mp4"), "{stderr}");
    assert!(!csv.exists());
    // An output folder that does not exist: refused before any work.
    let out = ferrite(&[
        "video",
        video.to_str().unwrap(),
        "--csv",
        "/nonexistent/dir/out.csv",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir/out.csv"));
    // Without ffmpeg on the PATH: one line saying how to install it.
    let out = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["video", video.to_str().unwrap()])
        .env("PATH", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("apt-get install ffmpeg"), "{stderr}");
}

#[test]
fn smoothing_adds_calmer_columns_and_keeps_the_raw_ones() {
    let Some(video) = clip("single_face.mp4") else {
        return;
    };
    let (raw, _) = run_video(&[video.to_str().unwrap()]);
    let (smooth, _) = run_video(&[video.to_str().unwrap(), "--smooth", "1"]);
    assert_eq!(raw.len(), smooth.len());
    let classes: Vec<String> = raw[0]
        .keys()
        .filter(|k| smooth[0].contains_key(&format!("smooth_{k}")))
        .cloned()
        .collect();
    assert!(classes.len() >= 7, "{classes:?}");
    let value = |r: &BTreeMap<String, String>, k: &str| -> f64 { r[k].parse().unwrap() };
    // The raw probabilities are those of the run without smoothing.
    for (a, b) in raw.iter().zip(&smooth) {
        for c in &classes {
            assert_eq!(a[c], b[c]);
        }
        let sum: f64 = classes
            .iter()
            .map(|c| value(b, &format!("smooth_{c}")))
            .sum();
        assert!(
            (sum - 1.0).abs() < 1e-3,
            "smoothed probabilities sum to {sum}"
        );
    }
    // Smoothed series move less from frame to frame.
    let variation = |key: &dyn Fn(&str) -> String| -> f64 {
        classes
            .iter()
            .map(|c| {
                smooth
                    .windows(2)
                    .map(|w| (value(&w[1], &key(c)) - value(&w[0], &key(c))).abs())
                    .sum::<f64>()
            })
            .sum()
    };
    let (rough, calm) = (
        variation(&|c| c.to_string()),
        variation(&|c| format!("smooth_{c}")),
    );
    assert!(calm < 0.5 * rough, "smoothed {calm} vs raw {rough}");
}

#[test]
fn an_animated_gif_needs_no_ffmpeg_and_keeps_its_frame_delays() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame};
    // Three frames of a face of the group photo, shown 100, 200 and 300 ms.
    let group = image::open(common::group_photo()).unwrap().to_rgba8();
    let face = image::imageops::crop_imm(&group, 850, 222, 92, 112).to_image();
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("face.gif");
    {
        let mut enc = GifEncoder::new(std::fs::File::create(&gif).unwrap());
        for ms in [100, 200, 300] {
            enc.encode_frame(Frame::from_parts(
                face.clone(),
                0,
                0,
                Delay::from_numer_denom_ms(ms, 1),
            ))
            .unwrap();
        }
    }
    let csv = dir.path().join("rows.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args([
            "video",
            gif.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ])
        .args(["--plot", dir.path().join("plot.png").to_str().unwrap()])
        .env("PATH", dir.path()) // no ffmpeg here
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = rows(&csv);
    let times: Vec<f64> = rows.iter().map(time).collect();
    assert_eq!(times.len(), 3);
    for (t, want) in times.iter().zip([0.0, 0.1, 0.3]) {
        assert!((t - want).abs() < 1e-6, "{times:?}");
    }
    assert!(rows.iter().all(|r| r["track"] == "1"), "{rows:?}");
    // The timeline: one panel for the one track.
    let plot = image::open(dir.path().join("plot.png")).unwrap();
    assert_eq!((plot.width(), plot.height()), (1100, 290));
}

/// The codec and start time of each stream of `path`, from ffprobe ("h264 0.000000").
fn streams(path: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,start_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.replace(',', " "))
        .collect()
}

/// Frame `n` of a video as RGB bytes, decoded by ffmpeg.
fn frame_rgb(path: &Path, n: usize) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-vf", &format!("select=eq(n\\,{n})"), "-frames:v", "1"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn the_annotated_video_keeps_every_frame_time_and_the_audio_and_shows_the_boxes() {
    let Some(video) = clip("face_noface.mov") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let labelled = dir.path().join("labelled.mp4");
    let (rows, _) = run_video(&[
        video.to_str().unwrap(),
        "--annotate",
        labelled.to_str().unwrap(),
    ]);
    // Variable frame rate: every frame at the source's own time (to the microsecond).
    let (want, got) = (ffprobe_times(&video), ffprobe_times(&labelled));
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
    // H.264, and the source's AAC audio, starting when it starts there (2.43 s).
    let (source, written) = (streams(&video), streams(&labelled));
    assert!(
        written.iter().any(|s| s.starts_with("h264 ")),
        "{written:?}"
    );
    let audio_start = |s: &[String]| -> f64 {
        let a = s
            .iter()
            .find(|s| s.starts_with("aac "))
            .expect("an AAC stream");
        a[4..].parse().unwrap()
    };
    assert!(
        (audio_start(&written) - audio_start(&source)).abs() < 0.05,
        "{source:?} vs {written:?}"
    );
    // Frame 10's face is boxed: the box's top edge is redrawn, the far corner is the
    // source's up to compression.
    let face = rows.iter().find(|r| r["frame"] == "10").unwrap();
    let num = |k: &str| -> usize { face[k].parse::<f64>().unwrap() as usize };
    let (a, b) = (frame_rgb(&video, 10), frame_rgb(&labelled, 10));
    let width = 960;
    let mean_diff = |x0: usize, x1: usize, y0: usize, y1: usize| -> f64 {
        let mut sum = 0.0;
        let mut n = 0.0;
        for y in y0..y1 {
            for i in (y * width + x0) * 3..(y * width + x1) * 3 {
                sum += (a[i] as f64 - b[i] as f64).abs();
                n += 1.0;
            }
        }
        sum / n
    };
    let (x, y, w) = (num("x"), num("y"), num("width"));
    let edge = mean_diff(x + 4, x + w - 4, y + 1, y + 2);
    let corner = mean_diff(0, 100, 500, 540);
    assert!(edge > 40.0 && corner < 8.0, "edge {edge}, corner {corner}");
}

#[test]
fn an_annotated_span_starts_at_zero_with_every_frame_and_its_audio() {
    let Some(video) = clip("WolfgangLanger_Pexels.mp4") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let labelled = dir.path().join("span.mkv");
    let (rows, _) = run_video(&[
        video.to_str().unwrap(),
        "--fps",
        "5",
        "--start",
        "5",
        "--end",
        "8",
        "--annotate",
        labelled.to_str().unwrap(),
    ]);
    assert!((14..=16).contains(&rows.len()), "{} rows", rows.len());
    // Every frame of the span is in the video (not only the 5 a second analysed), from 0.
    let span = ffprobe_times(&video)
        .into_iter()
        .filter(|t| (5.0..8.0).contains(t))
        .count();
    let got = ffprobe_times(&labelled);
    assert!(got.len().abs_diff(span) <= 1, "{} vs {span}", got.len());
    assert!(got[0] < 0.05 && got[0] >= 0.0, "first frame at {}", got[0]);
    let written = streams(&labelled);
    assert!(written.iter().any(|s| s.starts_with("aac ")), "{written:?}");
}

#[test]
fn an_annotated_video_needs_a_writable_path_with_an_extension() {
    let Some(video) = clip("single_face.mp4") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (bad, says) in [
        (dir.path().join("labelled"), "extension"),
        (dir.path().join("nodir/labelled.mp4"), "cannot write"),
    ] {
        let out = ferrite(&[
            "video",
            video.to_str().unwrap(),
            "--annotate",
            bad.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(bad.to_str().unwrap()) && stderr.contains(says),
            "{stderr}"
        );
        assert!(
            !stderr.contains("frames analysed"),
            "refused before any work: {stderr}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
}
