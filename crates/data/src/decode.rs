//! Decoding untrusted image bytes: every image ferrite reads (dataset folders, `predict`,
//! uploads to `serve`) goes through here, so that one place checks the format and the size
//! before anything is allocated for the pixels.

use std::io::Cursor;

use image::{DynamicImage, ImageReader, Limits};

/// Largest image decoded by default: 40 megapixels (a 7,300 x 5,500 photo).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

const FORMATS: &str = "PNG, JPEG, BMP, GIF, TIFF, WebP or PNM";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty file, expected an image")]
    Empty,
    #[error("not an image format ferrite reads ({FORMATS})")]
    Unsupported,
    #[error("image is {width}x{height} = {pixels} pixels; the limit is {limit}", pixels = *width as u64 * *height as u64)]
    TooLarge { width: u32, height: u32, limit: u64 },
    #[error("the image has no pixels ({width}x{height})")]
    NoPixels { width: u32, height: u32 },
    #[error("cannot decode the image: {0}")]
    Corrupt(String),
}

/// The width and height an image's header announces, without decoding its pixels: what a
/// caller needs to budget memory before [`decode_image`].
pub fn image_dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    header(bytes).map(|(_, w, h)| (w, h))
}

fn header(bytes: &[u8]) -> Result<(image::ImageFormat, u32, u32), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| f.reading_enabled())
        .ok_or(DecodeError::Unsupported)?;
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| DecodeError::Corrupt(format!("cannot read the header: {e}")))?;
    Ok((format, width, height))
}

/// Decodes `bytes` (format from the content, not a name): the header is read first, and an
/// image over `max_pixels` is refused before its pixels are; the decoder's own allocations
/// are capped too (a decompression bomb cannot take gigabytes).
pub fn decode_image(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, DecodeError> {
    let (format, width, height) = header(bytes)?;
    if width as u64 * height as u64 > max_pixels {
        return Err(DecodeError::TooLarge {
            width,
            height,
            limit: max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(DecodeError::NoPixels { width, height });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(16)); // RGBA f32 at worst
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if img.width() == 0 || img.height() == 0 {
        return Err(DecodeError::NoPixels {
            width: img.width(),
            height: img.height(),
        });
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::GrayImage::from_pixel(width, height, image::Luma([77]))
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn decodes_within_the_limit_and_refuses_beyond_it() {
        let img = decode_image(&png(40, 30), 1200).unwrap();
        assert_eq!((img.width(), img.height()), (40, 30));
        assert_eq!(
            decode_image(&png(40, 31), 1200).unwrap_err(),
            DecodeError::TooLarge {
                width: 40,
                height: 31,
                limit: 1200
            }
        );
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(decode_image(b"", 100).unwrap_err(), DecodeError::Empty);
        assert_eq!(
            decode_image(b"hello, not an image", 100).unwrap_err(),
            DecodeError::Unsupported
        );
        let mut cut = png(40, 30);
        cut.truncate(cut.len() / 2);
        assert!(matches!(
            decode_image(&cut, 10_000).unwrap_err(),
            DecodeError::Corrupt(_)
        ));
    }
}
