//! Frames of a video, with their exact presentation times, from `ffmpeg`.
//!
//! `ffmpeg` writes raw RGB frames to its standard output and, through its `showinfo` filter,
//! one line per frame to its standard error with the frame's presentation time as the
//! stream has it (variable frame rates and edit lists included: `-fps_mode passthrough`
//! keeps every frame and nothing else). A thread reads those lines; the frames are read one
//! at a time, so memory holds one frame.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};

use image::RgbImage;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error(
        "the `{0}` program was not found: ferrite reads videos through it. Install it (Debian/Ubuntu: `apt-get install ffmpeg`; macOS: `brew install ffmpeg`)"
    )]
    NoFfmpeg(&'static str),
    #[error("{path}: not a video ffmpeg can read: {detail}")]
    Unreadable { path: String, detail: String },
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
    #[error("{0}")]
    Settings(String),
}

/// What `ffprobe` says about the first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub width: u32,
    pub height: u32,
    /// Seconds, when the container says.
    pub duration: Option<f64>,
}

fn program(name: &'static str) -> Command {
    Command::new(name)
}

pub(crate) fn spawn_error(e: std::io::Error, name: &'static str, path: &Path) -> VideoError {
    if e.kind() == std::io::ErrorKind::NotFound {
        VideoError::NoFfmpeg(name)
    } else {
        VideoError::Io {
            path: path.display().to_string(),
            detail: format!("cannot run {name}: {e}"),
        }
    }
}

/// The first video stream's size and the duration, from `ffprobe`.
pub fn probe(path: &Path) -> Result<Probe, VideoError> {
    let out = program("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=width,height:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(e, "ffprobe", path))?;
    let unreadable = |detail: String| VideoError::Unreadable {
        path: path.display().to_string(),
        detail,
    };
    if !out.status.success() {
        return Err(unreadable(first_line(&out.stderr)));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| unreadable(e.to_string()))?;
    let stream = doc["streams"]
        .get(0)
        .ok_or_else(|| unreadable("it has no video stream".into()))?;
    let dim = |k: &str| {
        stream[k]
            .as_u64()
            .filter(|&v| v > 0 && v <= 16384)
            .map(|v| v as u32)
    };
    match (dim("width"), dim("height")) {
        (Some(width), Some(height)) => Ok(Probe {
            width,
            height,
            duration: doc["format"]["duration"]
                .as_str()
                .and_then(|d| d.parse().ok()),
        }),
        _ => Err(unreadable(format!("no usable frame size in {stream}"))),
    }
}

pub(crate) fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("ffmpeg gave no reason");
    line.trim().to_string()
}

/// One decoded frame.
pub struct Frame {
    /// Position among the frames decoded (0-based, from the start point when one was
    /// given), sampled or not.
    pub index: u64,
    /// Presentation time in seconds, as the stream has it.
    pub time: f64,
    pub image: RgbImage,
}

/// The frames of a video, in presentation order, between `start` and `end` seconds.
pub struct Frames {
    child: Child,
    stdout: ChildStdout,
    info: Receiver<FrameInfo>,
    errors: Receiver<String>,
    path: String,
    done: bool,
}

struct FrameInfo {
    index: u64,
    time: f64,
    width: u32,
    height: u32,
}

impl Frames {
    pub fn open(path: &Path, start: Option<f64>, end: Option<f64>) -> Result<Frames, VideoError> {
        probe(path)?; // a clear error for a missing program or a non-video, before decoding
        let mut cmd = program("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "info"]);
        if let Some(s) = start {
            cmd.arg("-ss").arg(format!("{s}"));
        }
        if let Some(e) = end {
            cmd.arg("-to").arg(format!("{e}"));
        }
        cmd.arg("-i").arg(path);
        // -copyts keeps the stream's own times when -ss seeks.
        cmd.args([
            "-copyts", "-an", "-sn", "-dn", "-map", "0:v:0", "-vf", "showinfo",
        ]);
        cmd.args([
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ]);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(e, "ffmpeg", path))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (info_tx, info) = channel();
        let (err_tx, errors) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = parse_showinfo(&line) {
                    if info_tx.send(i).is_err() {
                        break;
                    }
                } else if !line.contains("Parsed_showinfo") && !line.starts_with(' ') {
                    let _ = err_tx.send(line);
                }
            }
        });
        Ok(Frames {
            child,
            stdout,
            info,
            errors,
            path: path.display().to_string(),
            done: false,
        })
    }

    /// The next frame; `None` at the end of the video. A video cut short, or one ffmpeg
    /// gives up on, ends in an error naming the file and ffmpeg's reason.
    pub fn next_frame(&mut self) -> Option<Result<Frame, VideoError>> {
        if self.done {
            return None;
        }
        let Ok(info) = self.info.recv() else {
            self.done = true;
            return self.finish().err().map(Err);
        };
        let mut buf = vec![0u8; info.width as usize * info.height as usize * 3];
        if let Err(e) = self.stdout.read_exact(&mut buf) {
            self.done = true;
            return Some(Err(self.finish().err().unwrap_or(VideoError::Io {
                path: self.path.clone(),
                detail: format!("frame {} cut short: {e}", info.index),
            })));
        }
        let image = RgbImage::from_raw(info.width, info.height, buf).expect("a whole frame");
        Some(Ok(Frame {
            index: info.index,
            time: info.time,
            image,
        }))
    }

    /// Waits for ffmpeg; its failure, with the first error it reported, is an error. (What
    /// it says while succeeding, such as the raw muxer's complaints about the timestamps it
    /// does not use, is not.)
    fn finish(&mut self) -> Result<(), VideoError> {
        let status = self.child.wait().map_err(|e| VideoError::Io {
            path: self.path.clone(),
            detail: e.to_string(),
        })?;
        if status.success() {
            return Ok(());
        }
        let said: Vec<String> = self.errors.try_iter().collect();
        let reason = said
            .iter()
            .find(|l| l.to_ascii_lowercase().contains("error") || l.contains("Invalid"))
            .or(said.last())
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| format!("ffmpeg failed ({status})"));
        Err(VideoError::Unreadable {
            path: self.path.clone(),
            detail: reason,
        })
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `[Parsed_showinfo_0 @ 0x..] n:   3 pts:  1536 pts_time:0.125 ... s:960x540 ...`
fn parse_showinfo(line: &str) -> Option<FrameInfo> {
    if !line.contains("Parsed_showinfo") || !line.contains(" n:") {
        return None;
    }
    let field = |key: &str| -> Option<&str> {
        let at = line.find(key)? + key.len();
        line[at..].split_whitespace().next()
    };
    let (w, h) = field(" s:")?.split_once('x')?;
    Some(FrameInfo {
        index: field(" n:")?.parse().ok()?,
        time: field("pts_time:")?.parse().ok()?,
        width: w.parse().ok()?,
        height: h.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showinfo_lines_give_index_time_and_size() {
        let line = "[Parsed_showinfo_0 @ 0x559a5f330980] n:  12 pts:   6144 pts_time:0.5     pos:    37646 fmt:yuv420p sar:1/1 s:960x540 i:P iskey:0 type:B";
        let i = parse_showinfo(line).unwrap();
        assert_eq!((i.index, i.time, i.width, i.height), (12, 0.5, 960, 540));
        assert!(parse_showinfo("[Parsed_showinfo_0 @ 0x5] config in time_base: 1/12288").is_none());
        assert!(parse_showinfo("frame=  95 fps=0.0 q=-0.0 Lsize=").is_none());
    }
}
