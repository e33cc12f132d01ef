//! The Kaggle `fer2013.csv`: `emotion,pixels,Usage`, one 48x48 face per row.

use std::path::Path;

use crate::classes::FER2013_CLASSES;
use crate::dataset::{Dataset, Origin, Samples, Split, SplitRole};
use crate::face::PIXELS;
use crate::input::{open_text, read_line, show, split_fields};
use crate::problem::{DataError, Problem, Problems};

/// The three FER2013 usages, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Training,
    PublicTest,
    PrivateTest,
}

impl Usage {
    pub const ALL: [Usage; 3] = [Usage::Training, Usage::PublicTest, Usage::PrivateTest];

    pub fn parse(text: &[u8]) -> Option<Usage> {
        match text {
            b"Training" => Some(Usage::Training),
            b"PublicTest" => Some(Usage::PublicTest),
            b"PrivateTest" => Some(Usage::PrivateTest),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Usage::Training => "Training",
            Usage::PublicTest => "PublicTest",
            Usage::PrivateTest => "PrivateTest",
        }
    }

    /// Position in [`Usage::ALL`] (and in [`usage_splits`]).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn role(self) -> SplitRole {
        match self {
            Usage::Training => SplitRole::Train,
            Usage::PublicTest => SplitRole::Val,
            Usage::PrivateTest => SplitRole::Test,
        }
    }
}

/// Every row of a fer2013.csv, by position. A row that failed to parse holds a black
/// image and `None` usage; its problem is in `problems`.
#[derive(Debug, Default)]
pub struct Fer2013Table {
    pixels: Vec<u8>,
    pub labels: Vec<u8>,
    pub usages: Vec<Option<Usage>>,
    pub problems: Problems,
}

impl Fer2013Table {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    pub fn image(&self, row: usize) -> &[u8] {
        &self.pixels[row * PIXELS..(row + 1) * PIXELS]
    }

    /// The FER2013 dataset (7 classes, splits by Usage). Fails if any row was invalid.
    pub fn into_dataset(self) -> Result<Dataset, DataError> {
        if !self.problems.is_empty() {
            return Err(DataError::Invalid(self.problems));
        }
        let mut splits = usage_splits();
        for row in 0..self.rows() {
            let usage = self.usages[row].expect("valid rows have a usage");
            let split = &mut splits[usage.index()];
            split
                .samples
                .push(self.image(row), self.labels[row] as u32, Origin::Row(row));
        }
        Ok(Dataset {
            name: "FER2013".into(),
            classes: FER2013_CLASSES.iter().map(|s| s.to_string()).collect(),
            splits,
            skipped: Problems::default(),
        })
    }
}

/// One empty split per usage, in [`Usage::ALL`] order.
pub fn usage_splits() -> Vec<Split> {
    Usage::ALL
        .iter()
        .map(|u| Split {
            name: u.name().to_string(),
            role: u.role(),
            samples: Samples::default(),
        })
        .collect()
}

/// Reads a whole fer2013.csv (plain or gzip), collecting row problems up to `cap`.
///
/// A problem that makes the rest of the file unreadable (missing or wrong header,
/// truncated or corrupt compression) is returned as a fatal error instead.
pub fn read_fer2013(path: &Path, cap: usize) -> Result<Fer2013Table, DataError> {
    let mut reader = open_text(path)?;
    let mut line = Vec::with_capacity(16 * 1024);
    if !read_line(&mut *reader, &mut line, path, 0)? {
        return Err(DataError::fatal(
            path,
            "the file is empty; expected a header line `emotion,pixels,Usage`",
        ));
    }
    let columns = Columns::from_header(&line).ok_or_else(|| {
        DataError::Fatal(Problem::at_line(
            path,
            1,
            format!(
                "expected a header with the columns emotion, pixels and Usage, found `{}`",
                show(&line)
            ),
        ))
    })?;

    let mut table = Fer2013Table {
        problems: Problems::with_cap(cap),
        ..Default::default()
    };
    let mut plane = [0u8; PIXELS];
    let mut line_no = 1;
    while read_line(&mut *reader, &mut line, path, line_no)? {
        line_no += 1;
        match parse_row(&line, &columns, &mut plane) {
            Ok((label, usage)) => {
                table.pixels.extend_from_slice(&plane);
                table.labels.push(label);
                table.usages.push(Some(usage));
            }
            Err(message) => {
                table
                    .problems
                    .push(Problem::at_line(path, line_no, message));
                table.pixels.extend_from_slice(&[0; PIXELS]);
                table.labels.push(0);
                table.usages.push(None);
            }
        }
    }
    if table.rows() == 0 {
        return Err(DataError::Fatal(Problem::at_line(
            path,
            1,
            "the file has a header but no data rows",
        )));
    }
    Ok(table)
}

/// Reads a fer2013.csv and returns the FER2013 dataset, failing on any invalid row.
pub fn load_fer2013(path: &Path) -> Result<Dataset, DataError> {
    read_fer2013(path, crate::problem::DEFAULT_PROBLEM_CAP)?.into_dataset()
}

struct Columns {
    emotion: usize,
    pixels: usize,
    usage: usize,
    count: usize,
}

impl Columns {
    fn from_header(line: &[u8]) -> Option<Columns> {
        let names: Vec<String> = split_fields(line)
            .iter()
            .map(|f| {
                String::from_utf8_lossy(f)
                    .trim_start_matches('\u{feff}')
                    .to_ascii_lowercase()
            })
            .collect();
        let find = |wanted: &str| names.iter().position(|n| n == wanted);
        Some(Columns {
            emotion: find("emotion")?,
            pixels: find("pixels")?,
            usage: find("usage")?,
            count: names.len(),
        })
    }
}

fn parse_row(
    line: &[u8],
    columns: &Columns,
    plane: &mut [u8; PIXELS],
) -> Result<(u8, Usage), String> {
    if line.is_empty() {
        return Err("empty line; expected `emotion,pixels,Usage`".into());
    }
    let fields = split_fields(line);
    if fields.len() != columns.count {
        return Err(format!(
            "expected {} comma-separated fields, found {}",
            columns.count,
            fields.len()
        ));
    }
    let label_text = fields[columns.emotion];
    let label = std::str::from_utf8(label_text)
        .ok()
        .and_then(|t| t.parse::<u8>().ok())
        .filter(|&l| (l as usize) < FER2013_CLASSES.len())
        .ok_or_else(|| {
            format!(
                "emotion label `{}` is out of range: expected an integer 0-6",
                show(label_text)
            )
        })?;
    parse_pixels(fields[columns.pixels], plane)?;
    let usage_text = fields[columns.usage];
    let usage = Usage::parse(usage_text).ok_or_else(|| {
        format!(
            "unknown Usage `{}`: expected Training, PublicTest or PrivateTest",
            show(usage_text)
        )
    })?;
    Ok((label, usage))
}

/// Parses 2304 space-separated integers 0-255 into `plane`.
fn parse_pixels(field: &[u8], plane: &mut [u8; PIXELS]) -> Result<(), String> {
    let mut count = 0usize;
    for token in field.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        let value = parse_u8_token(token).ok_or_else(|| {
            format!(
                "pixel {} is `{}`: expected an integer 0-255",
                count + 1,
                show(token)
            )
        })?;
        if count < PIXELS {
            plane[count] = value;
        }
        count += 1;
    }
    if count != PIXELS {
        return Err(format!("expected {PIXELS} pixel values, found {count}"));
    }
    Ok(())
}

fn parse_u8_token(token: &[u8]) -> Option<u8> {
    if token.len() > 3 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in token {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u32;
    }
    u8::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn row(label: &str, pixels: &str, usage: &str) -> String {
        format!("{label},{pixels},{usage}\n")
    }

    fn pixels(n: usize, value: u32) -> String {
        vec![value.to_string(); n].join(" ")
    }

    fn write(content: &[u8], gzip: bool) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(content).unwrap();
            f.write_all(&enc.finish().unwrap()).unwrap();
        } else {
            f.write_all(content).unwrap();
        }
        f
    }

    fn good_file() -> String {
        let mut s = String::from("emotion,pixels,Usage\n");
        s += &row("0", &pixels(PIXELS, 10), "Training");
        s += &row("3", &pixels(PIXELS, 200), "PublicTest");
        s += &row("6", &pixels(PIXELS, 255), "PrivateTest");
        s
    }

    fn only_problem(content: &str) -> String {
        let f = write(content.as_bytes(), false);
        let table = read_fer2013(f.path(), 10).unwrap();
        assert_eq!(table.problems.total, 1, "{:?}", table.problems);
        table.problems.kept[0].to_string()
    }

    #[test]
    fn plain_and_gzip_give_the_same_dataset() {
        for gzip in [false, true] {
            let f = write(good_file().as_bytes(), gzip);
            let ds = load_fer2013(f.path()).unwrap();
            let counts: Vec<usize> = ds.splits.iter().map(|s| s.samples.len()).collect();
            assert_eq!(counts, vec![1, 1, 1]);
            let test = ds.split("PrivateTest").unwrap();
            assert_eq!(test.samples.label(0), 6);
            assert!(test.samples.image(0).iter().all(|&p| p == 255));
            assert_eq!(test.samples.origin(0), &Origin::Row(2));
        }
    }

    #[test]
    fn crlf_and_quoted_pixels_are_accepted() {
        let content = format!(
            "emotion,pixels,Usage\r\n4,\"{}\",Training\r\n",
            pixels(PIXELS, 7)
        );
        let f = write(content.as_bytes(), false);
        let ds = load_fer2013(f.path()).unwrap();
        assert_eq!(ds.split("Training").unwrap().samples.label(0), 4);
    }

    #[test]
    fn short_pixel_row_names_its_line_and_counts() {
        let mut s = good_file();
        s += &row("1", &pixels(PIXELS - 1, 3), "Training");
        let msg = only_problem(&s);
        assert!(
            msg.contains("line 5: expected 2304 pixel values, found 2303"),
            "{msg}"
        );
    }

    #[test]
    fn pixel_above_255_is_reported() {
        let mut px: Vec<String> = vec!["1".into(); PIXELS];
        px[16] = "256".into();
        let s = good_file() + &row("1", &px.join(" "), "Training");
        let msg = only_problem(&s);
        assert!(
            msg.contains("line 5: pixel 17 is `256`: expected an integer 0-255"),
            "{msg}"
        );
    }

    #[test]
    fn label_out_of_range_is_reported() {
        let s = good_file() + &row("7", &pixels(PIXELS, 1), "Training");
        let msg = only_problem(&s);
        assert!(
            msg.contains("line 5: emotion label `7` is out of range"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_usage_is_reported() {
        let s = good_file() + &row("2", &pixels(PIXELS, 1), "Validation");
        let msg = only_problem(&s);
        assert!(msg.contains("line 5: unknown Usage `Validation`"), "{msg}");
    }

    #[test]
    fn invalid_rows_make_loading_fail_with_their_lines() {
        let s = good_file()
            + &row("9", &pixels(PIXELS, 1), "Training")
            + &row("1", &pixels(3, 1), "Training");
        let f = write(s.as_bytes(), false);
        let err = load_fer2013(f.path()).unwrap_err().to_string();
        assert!(err.contains("2 invalid entries"), "{err}");
        assert!(err.contains("line 5") && err.contains("line 6"), "{err}");
    }

    #[test]
    fn missing_header_is_fatal() {
        let s = row("0", &pixels(PIXELS, 1), "Training");
        let f = write(s.as_bytes(), false);
        let err = read_fer2013(f.path(), 10).unwrap_err().to_string();
        assert!(
            err.contains("line 1: expected a header with the columns emotion, pixels and Usage"),
            "{err}"
        );
    }

    #[test]
    fn empty_file_is_fatal() {
        let f = write(b"", false);
        let err = read_fer2013(f.path(), 10).unwrap_err().to_string();
        assert!(err.contains("the file is empty"), "{err}");
    }

    #[test]
    fn truncated_gzip_is_fatal_and_says_so() {
        let mut s = good_file();
        for _ in 0..50 {
            s += &row("3", &pixels(PIXELS, 123), "Training");
        }
        let full = write(s.as_bytes(), true);
        let bytes = std::fs::read(full.path()).unwrap();
        let cut = write(&bytes[..bytes.len() / 2], false);
        let err = read_fer2013(cut.path(), 10).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        assert!(err.contains("read failed after line"), "{err}");
    }
}
