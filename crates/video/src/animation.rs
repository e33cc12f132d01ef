//! Animated GIF and APNG files, decoded by the `image` crate: no `ffmpeg` needed. A frame's
//! time is the sum of the delays of the frames before it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, sync_channel};

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::{AnimationDecoder, DynamicImage};

use crate::decode::{Frame, VideoError};

/// Whether `path` is an animated GIF or PNG (from its first bytes; an APNG has an `acTL`
/// chunk before its first `IDAT`).
pub fn is_animation(path: &Path) -> bool {
    let mut head = Vec::new();
    let Ok(file) = File::open(path) else {
        return false;
    };
    if file.take(1 << 16).read_to_end(&mut head).is_err() {
        return false;
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return true;
    }
    if !head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return false;
    }
    let mut at = 8;
    while at + 8 <= head.len() {
        let len = u32::from_be_bytes(head[at..at + 4].try_into().unwrap()) as usize;
        match &head[at + 4..at + 8] {
            b"acTL" => return true,
            b"IDAT" => return false,
            _ => at += 12 + len,
        }
    }
    false
}

/// The frames of an animation between `start` and `end` seconds. The `image` crate's
/// frame iterator cannot move between threads, so it runs on a thread of its own that hands
/// over one frame at a time; an `Animation` can then go wherever a video can (a Python
/// iterator, say).
pub struct Animation {
    frames: Receiver<Result<image::Frame, VideoError>>,
    index: u64,
    time: f64,
    start: f64,
    end: f64,
}

impl Animation {
    pub fn open(
        path: &Path,
        start: Option<f64>,
        end: Option<f64>,
    ) -> Result<Animation, VideoError> {
        let (tx, frames) = sync_channel(1);
        let (opened_tx, opened) = sync_channel(1);
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            let name = path.display().to_string();
            let decoder = match decoder(&path) {
                Ok(d) => {
                    let _ = opened_tx.send(Ok(()));
                    d
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            for frame in decoder {
                let frame = frame.map_err(|e| VideoError::Unreadable {
                    path: name.clone(),
                    detail: e.to_string(),
                });
                // The reader is gone (dropped, or done): stop decoding.
                if tx.send(frame).is_err() {
                    break;
                }
            }
        });
        opened.recv().map_err(|_| VideoError::Io {
            path: String::new(),
            detail: "the animation decoder stopped".into(),
        })??;
        Ok(Animation {
            frames,
            index: 0,
            time: 0.0,
            start: start.unwrap_or(f64::NEG_INFINITY),
            end: end.unwrap_or(f64::INFINITY),
        })
    }

    pub fn next_frame(&mut self) -> Option<Result<Frame, VideoError>> {
        loop {
            let frame = match self.frames.recv().ok()? {
                Ok(f) => f,
                Err(e) => return Some(Err(e)),
            };
            let (index, time) = (self.index, self.time);
            let (num, den) = frame.delay().numer_denom_ms();
            self.time += num as f64 / den.max(1) as f64 / 1000.0;
            self.index += 1;
            if time > self.end {
                return None;
            }
            if time + 1e-9 >= self.start {
                let image = DynamicImage::ImageRgba8(frame.into_buffer()).to_rgb8();
                return Some(Ok(Frame { index, time, image }));
            }
        }
    }
}

/// The frames of a GIF or APNG file, decoded as they are asked for.
fn decoder(path: &Path) -> Result<image::Frames<'static>, VideoError> {
    let name = path.display().to_string();
    let unreadable = |e: image::ImageError| VideoError::Unreadable {
        path: name.clone(),
        detail: e.to_string(),
    };
    let io = |e: std::io::Error| VideoError::Io {
        path: name.clone(),
        detail: e.to_string(),
    };
    let file = BufReader::new(File::open(path).map_err(io)?);
    let mut head = [0u8; 3];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(io)?;
    Ok(if &head == b"GIF" {
        GifDecoder::new(file).map_err(unreadable)?.into_frames()
    } else {
        PngDecoder::new(file)
            .and_then(|d| d.apng())
            .map_err(unreadable)?
            .into_frames()
    })
}
