//! Decoding untrusted image bytes: every image ferrite reads (dataset folders, `predict`,
//! uploads to `serve`) goes through here, so that one place checks the format and the size
//! before anything is allocated for the pixels.

use std::io::{Cursor, Read};

use image::{DynamicImage, ImageReader, Limits};

/// Largest image decoded by default: 40 megapixels (a 7,300 x 5,500 photo).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// Largest image file read by default: 64 MiB (a 40-megapixel PNG is well under it).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

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
    #[error("file larger than {limit} bytes, the limit for an image")]
    FileTooLarge { limit: u64 },
    #[error("cannot read: {0}")]
    Io(String),
}

/// Reads an image file's bytes from `r` (a file, standard input, a device): the first bytes
/// must name an image format, and no more than `max_bytes` are read, so `/dev/zero` or a
/// huge non-image is refused at once instead of read whole.
pub fn read_image_bytes(mut r: impl Read, max_bytes: u64) -> Result<Vec<u8>, DecodeError> {
    let mut head = Vec::with_capacity(64);
    (&mut r)
        .take(64)
        .read_to_end(&mut head)
        .map_err(|e| DecodeError::Io(e.to_string()))?;
    if head.is_empty() {
        return Err(DecodeError::Empty);
    }
    image::guess_format(&head)
        .ok()
        .filter(|f| f.reading_enabled())
        .ok_or(DecodeError::Unsupported)?;
    let mut bytes = head;
    r.take(max_bytes.saturating_sub(bytes.len() as u64) + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DecodeError::Io(e.to_string()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(DecodeError::FileTooLarge { limit: max_bytes });
    }
    Ok(bytes)
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
    fn reading_stops_at_a_non_image_start_and_at_the_size_limit() {
        // An endless stream of zeros: refused after its first bytes.
        assert_eq!(
            read_image_bytes(std::io::repeat(0), 1 << 30).unwrap_err(),
            DecodeError::Unsupported
        );
        // An endless stream that starts like a PNG: refused at the limit, not read whole.
        let endless_png = Cursor::new(png(4, 4)).chain(std::io::repeat(7));
        assert_eq!(
            read_image_bytes(endless_png, 10_000).unwrap_err(),
            DecodeError::FileTooLarge { limit: 10_000 }
        );
        let ok = png(40, 30);
        assert_eq!(
            read_image_bytes(Cursor::new(&ok), ok.len() as u64).unwrap(),
            ok
        );
        assert_eq!(
            read_image_bytes(std::io::empty(), 100).unwrap_err(),
            DecodeError::Empty
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
