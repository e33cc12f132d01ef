//! Opening text inputs that may be plain or gzip-compressed, decided by content.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::problem::DataError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BUFFER: usize = 1 << 20;
/// Longest line read: a FER2013 row is under 10 kB. Without a cap, a file (or a small gzip
/// bomb) with no line break would be read into memory whole.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Most lines read: FER2013 has 35,888. A cap keeps a gzip bomb of valid-looking rows from
/// filling memory (a row takes 2.3 kB as a face).
pub const MAX_LINES: usize = 1_000_000;

/// Opens `path` for line reading, decompressing it when it starts with the gzip magic
/// bytes (whatever its name says).
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>, DataError> {
    if path.is_dir() {
        return Err(DataError::fatal(path, "is a folder; expected a CSV file"));
    }
    let file = File::open(path).map_err(|e| DataError::fatal(path, format!("cannot open: {e}")))?;
    let mut reader = BufReader::with_capacity(BUFFER, file);
    let head = reader
        .fill_buf()
        .map_err(|e| DataError::fatal(path, format!("cannot read: {e}")))?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(BufReader::with_capacity(
            BUFFER,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads one line (without its `\n` or `\r\n`) into `buf`. Returns false at end of input.
/// A failed read names the line it happened after, and says plainly when a gzip stream
/// is cut short.
pub fn read_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    path: &Path,
    lines_read: usize,
) -> Result<bool, DataError> {
    buf.clear();
    match reader
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)
    {
        Ok(0) => Ok(false),
        Ok(_) if lines_read >= MAX_LINES => Err(DataError::fatal(
            path,
            format!("more than {MAX_LINES} lines: too large for a FER2013 or FERPlus file"),
        )),
        Ok(n) if n > MAX_LINE_BYTES && buf.last() != Some(&b'\n') => {
            Err(DataError::Fatal(crate::problem::Problem::at_line(
                path,
                lines_read + 1,
                format!("line longer than {MAX_LINE_BYTES} bytes: not a FER2013 or FERPlus file"),
            )))
        }
        Ok(_) => {
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            Ok(true)
        }
        Err(e) => Err(DataError::fatal(path, describe_read_error(&e, lines_read))),
    }
}

fn describe_read_error(e: &io::Error, lines_read: usize) -> String {
    let what = match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            "the compressed stream ends early: the file is truncated".to_string()
        }
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            format!("the compressed data is corrupt ({e})")
        }
        _ => e.to_string(),
    };
    format!("read failed after line {lines_read}: {what}")
}

/// Splits a CSV line on commas and strips one pair of surrounding double quotes from each
/// field. Neither file format ferrite reads has commas or quotes inside fields.
pub fn split_fields(line: &[u8]) -> Vec<&[u8]> {
    line.split(|&b| b == b',').map(unquote).collect()
}

fn unquote(field: &[u8]) -> &[u8] {
    let f = field.trim_ascii();
    if f.len() >= 2 && f[0] == b'"' && f[f.len() - 1] == b'"' {
        &f[1..f.len() - 1]
    } else {
        f
    }
}

/// A short, printable rendering of raw bytes for error messages.
pub fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() > 40 {
        format!("{}...", text.chars().take(40).collect::<String>())
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_without_end_is_refused_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one-line.csv");
        let mut text = b"emotion,pixels,Usage\n".to_vec();
        text.extend(std::iter::repeat_n(b'7', MAX_LINE_BYTES + 10));
        std::fs::write(&path, &text).unwrap();
        let mut reader = open_text(&path).unwrap();
        let mut line = Vec::new();
        assert!(read_line(&mut *reader, &mut line, &path, 0).unwrap());
        let err = read_line(&mut *reader, &mut line, &path, 1).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(err.to_string().contains("longer than"), "{err}");
        assert!(line.len() <= MAX_LINE_BYTES + 1);
    }
}
