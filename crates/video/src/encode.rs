//! A video written by `ffmpeg` (H.264) from our frames, at the frames' own times, with the
//! source's audio.
//!
//! ffmpeg's raw-video input has no timestamps: it assumes a constant frame rate, which
//! would move every frame of a variable-frame-rate phone video. So the frames go to ffmpeg's
//! standard input as a minimal Matroska stream (uncompressed RGB, one cluster per frame
//! with its time in microseconds), which carries each frame's exact time; ffmpeg keeps them
//! (`-copyts`, `-fps_mode passthrough`) and takes the audio from the source file, cut to the
//! same span.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use image::RgbImage;

use crate::decode::{VideoError, first_line, spawn_error};

/// Audio codecs the MP4 container takes as they are; others are re-encoded to AAC there.
const MP4_AUDIO: [&str; 7] = ["aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"];

/// An output video being written; it appears at its path only after [`Encoder::finish`].
pub struct Encoder {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    /// What ffmpeg says (errors only), read by a thread so that it never blocks.
    log: Option<std::thread::JoinHandle<Vec<String>>>,
    temp: Option<tempfile::TempPath>,
    path: PathBuf,
    width: u32,
    height: u32,
}

impl Encoder {
    /// Starts ffmpeg writing `out` (its format from the extension: .mp4, .mov, .mkv...)
    /// with frames of `width` x `height`, and the audio of `source` between `start` and
    /// `end` seconds when it has any.
    pub fn create(
        out: &Path,
        source: &Path,
        (width, height): (u32, u32),
        start: Option<f64>,
        end: Option<f64>,
    ) -> Result<Encoder, VideoError> {
        let ext = extension(out)?;
        let temp = ferrite_data::atomic::temp_beside(out, &format!(".{ext}"))
            .map_err(|e| VideoError::Io {
                path: out.display().to_string(),
                detail: format!("cannot write there: {e}"),
            })?
            .into_temp_path();
        let audio = audio_codec(source);
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]);
        cmd.args(["-copyts", "-f", "matroska", "-i", "pipe:0"]);
        if audio.is_some() {
            cmd.arg("-i").arg(source);
        }
        // The span as output options: both streams cut at the same times and moved back by
        // the same amount, so that the output starts at 0 and the audio stays in sync.
        if let Some(s) = start {
            cmd.arg("-ss").arg(format!("{s}"));
        }
        if let Some(e) = end {
            cmd.arg("-to").arg(format!("{e}"));
        }
        cmd.args(["-map", "0:v:0"]);
        // H.264 in 4:2:0 needs even sides.
        cmd.args(["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2,format=yuv420p"]);
        cmd.args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"]);
        // Every frame at its own time: no frames dropped or repeated, and the time base the
        // input gives (ffmpeg would otherwise round the times to a guessed frame rate).
        cmd.args(["-fps_mode", "passthrough", "-enc_time_base:v", "-1"]);
        if let Some(codec) = &audio {
            cmd.args(["-map", "1:a:0"]);
            let mp4 = matches!(ext.as_str(), "mp4" | "m4v");
            if mp4 && !MP4_AUDIO.contains(&codec.as_str()) {
                cmd.args(["-c:a", "aac"]);
            } else {
                cmd.args(["-c:a", "copy"]);
            }
        }
        if matches!(ext.as_str(), "mp4" | "m4v" | "mov") {
            cmd.args(["-movflags", "+faststart"]);
        }
        cmd.arg(&*temp);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(e, "ffmpeg", out))?;
        let stderr = child.stderr.take().expect("piped");
        let log = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect()
        });
        let mut stdin = BufWriter::with_capacity(1 << 20, child.stdin.take().expect("piped"));
        let header = matroska_header(width, height);
        let mut encoder = Encoder {
            child,
            stdin: None,
            log: Some(log),
            temp: Some(temp),
            path: out.to_path_buf(),
            width,
            height,
        };
        if let Err(e) = stdin.write_all(&header) {
            return Err(encoder.failed(e));
        }
        encoder.stdin = Some(stdin);
        Ok(encoder)
    }

    /// Adds a frame shown from `time` seconds (the source's time; frames come in order).
    /// A frame of another size is scaled to the first one's.
    pub fn write(&mut self, time: f64, image: &RgbImage) -> Result<(), VideoError> {
        let scaled;
        let image = if image.dimensions() == (self.width, self.height) {
            image
        } else {
            scaled = image::imageops::resize(
                image,
                self.width,
                self.height,
                image::imageops::FilterType::Triangle,
            );
            &scaled
        };
        let micros = (time.max(0.0) * 1e6).round() as u64;
        let stdin = self.stdin.as_mut().expect("open until finish");
        let result = write_cluster(stdin, micros, image.as_raw());
        result.map_err(|e| self.failed(e))
    }

    /// Ends the video and moves it to its path.
    pub fn finish(mut self) -> Result<(), VideoError> {
        let closed = self.stdin.take().expect("open until finish").into_inner();
        drop(closed); // ffmpeg sees the end of its input
        let status = self.child.wait().map_err(|e| self.failed(e))?;
        if !status.success() {
            return Err(self.failed(std::io::Error::other(format!("ffmpeg {status}"))));
        }
        let temp = self.temp.take().expect("kept until finish");
        temp.persist(&self.path).map_err(|e| VideoError::Io {
            path: self.path.display().to_string(),
            detail: format!("cannot write: {e}"),
        })
    }

    /// The error for a failed write: what ffmpeg said, else the I/O error.
    fn failed(&mut self, e: std::io::Error) -> VideoError {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let said = self
            .log
            .take()
            .and_then(|log| log.join().ok())
            .unwrap_or_default();
        let reason = said
            .iter()
            .find(|l| !l.trim().is_empty())
            .map(|l| first_line(l.as_bytes()))
            .unwrap_or_else(|| e.to_string());
        VideoError::Io {
            path: self.path.display().to_string(),
            detail: format!("ffmpeg could not write the video: {reason}"),
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // Not finished (an error, Ctrl-C): stop ffmpeg; the temporary file goes with `temp`.
        if self.temp.is_some() {
            self.stdin = None;
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Checks, before any work, that a video can be written at `out`; its extension (which
/// names the format).
pub fn check_output(out: &Path) -> Result<String, VideoError> {
    let ext = extension(out)?;
    ferrite_data::atomic::temp_beside(out, "").map_err(|e| VideoError::Io {
        path: out.display().to_string(),
        detail: format!("cannot write there: {e}"),
    })?;
    Ok(ext)
}

/// The extension of an output video, which names its format; lower case.
fn extension(out: &Path) -> Result<String, VideoError> {
    match out.extension() {
        Some(e) if !e.is_empty() => Ok(e.to_string_lossy().to_ascii_lowercase()),
        _ => Err(VideoError::Io {
            path: out.display().to_string(),
            detail: "give the output video an extension (.mp4, .mov or .mkv): it names the format"
                .into(),
        }),
    }
}

/// The codec of the first audio stream of `source`, if it has one.
fn audio_codec(source: &Path) -> Option<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0"])
        .args(["-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(source)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !name.is_empty()).then_some(name)
}

// Matroska (EBML): each element is its ID, its size as a variable-length integer, its body.

/// An element with a known body.
fn element(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = element_head(id, body.len() as u64);
    out.extend_from_slice(body);
    out
}

/// An element's ID and size; the size always in 8 bytes (simplest, and valid).
fn element_head(id: u32, size: u64) -> Vec<u8> {
    let mut out: Vec<u8> = id
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    out.push(0x01);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
    out
}

fn uint(id: u32, v: u64) -> Vec<u8> {
    element(id, &v.to_be_bytes())
}

/// The EBML header, and the start of a segment of unknown length (a stream) holding the
/// time scale (1 µs: exact enough, and an MP4 time scale whose 32-bit frame durations
/// still reach an hour) and one uncompressed RGB video track.
fn matroska_header(width: u32, height: u32) -> Vec<u8> {
    let ebml = [
        uint(0x4286, 1),              // EBMLVersion
        uint(0x42F7, 1),              // EBMLReadVersion
        uint(0x42F2, 4),              // EBMLMaxIDLength
        uint(0x42F3, 8),              // EBMLMaxSizeLength
        element(0x4282, b"matroska"), // DocType
        uint(0x4287, 4),              // DocTypeVersion
        uint(0x4285, 2),              // DocTypeReadVersion
    ]
    .concat();
    let info = element(
        0x1549_A966,
        &[uint(0x2A_D7B1, 1000), element(0x4D80, b"ferrite")].concat(), // TimestampScale, MuxingApp
    );
    let video = element(
        0xE0,
        &[
            uint(0xB0, width.into()),  // PixelWidth
            uint(0xBA, height.into()), // PixelHeight
            // ColourSpace: the FourCC ffmpeg's raw video uses for packed RGB24.
            element(0x2E_B524, b"RGB\x18"),
        ]
        .concat(),
    );
    let track = element(
        0xAE,
        &[
            uint(0xD7, 1),                    // TrackNumber
            uint(0x73C5, 1),                  // TrackUID
            uint(0x83, 1),                    // TrackType: video
            uint(0x9C, 0),                    // FlagLacing
            element(0x86, b"V_UNCOMPRESSED"), // CodecID
            video,
        ]
        .concat(),
    );
    let tracks = element(0x1654_AE6B, &track);
    let mut out = element(0x1A45_DFA3, &ebml);
    // Segment, size unknown: all ones in the 8-byte form.
    out.extend_from_slice(&[
        0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    out.extend(info);
    out.extend(tracks);
    out
}

/// One cluster at `micros` holding one key frame (a SimpleBlock: track 1, time 0 relative to
/// the cluster, key-frame flag, the pixels).
fn write_cluster(w: &mut impl Write, micros: u64, pixels: &[u8]) -> std::io::Result<()> {
    let time = uint(0xE7, micros);
    let block_head = [0x81, 0x00, 0x00, 0x80];
    let block = element_head(0xA3, (block_head.len() + pixels.len()) as u64);
    let size = (time.len() + block.len() + block_head.len() + pixels.len()) as u64;
    w.write_all(&element_head(0x1F43_B675, size))?;
    w.write_all(&time)?;
    w.write_all(&block)?;
    w.write_all(&block_head)?;
    w.write_all(pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_sizes_are_eight_byte_vints() {
        assert_eq!(
            element(0x86, b"ab"),
            [0x86, 0x01, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']
        );
        assert_eq!(
            &element_head(0x1A45_DFA3, 3)[..5],
            &[0x1A, 0x45, 0xDF, 0xA3, 0x01]
        );
    }
}
