//! Problems found in input data, and the error that carries them.
//!
//! Readers never stop at the first bad row: they collect [`Problem`]s (up to a cap, while
//! still counting them all) so that `ferrite data check` can list everything wrong with a
//! file in one pass, and a loading command can fail with the first few.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with an input: which file, which line (1-based, header included) when
/// the file is text, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn at_line(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Problem {
            path: path.to_path_buf(),
            line: Some(line),
            message: message.into(),
        }
    }

    pub fn in_file(path: &Path, message: impl Into<String>) -> Self {
        Problem {
            path: path.to_path_buf(),
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}: line {}: {}",
                self.path.display(),
                line,
                self.message
            ),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// How many problems a report keeps in full; the rest are only counted.
pub const DEFAULT_PROBLEM_CAP: usize = 100;

/// Problems collected while reading, capped in memory but counted in full.
#[derive(Debug, Clone, Default)]
pub struct Problems {
    pub kept: Vec<Problem>,
    pub total: usize,
    cap: usize,
}

impl Problems {
    pub fn with_cap(cap: usize) -> Self {
        Problems {
            kept: Vec::new(),
            total: 0,
            cap,
        }
    }

    pub fn push(&mut self, problem: Problem) {
        self.total += 1;
        if self.kept.len() < self.cap {
            self.kept.push(problem);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn extend(&mut self, other: Problems) {
        self.total += other.total - other.kept.len();
        for p in other.kept {
            self.push(p);
        }
    }
}

/// Why a dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The input is unusable as a whole (missing, empty, truncated, wrong header...).
    #[error("{0}")]
    Fatal(Problem),
    /// The input is readable but some rows or files are invalid.
    #[error("{}", invalid_message(.0))]
    Invalid(Problems),
}

fn invalid_message(problems: &Problems) -> String {
    const SHOWN: usize = 5;
    let mut text = format!(
        "{} invalid {} (run `ferrite data check` for the full list):",
        problems.total,
        if problems.total == 1 {
            "entry"
        } else {
            "entries"
        }
    );
    for p in problems.kept.iter().take(SHOWN) {
        text.push_str(&format!("\n  {p}"));
    }
    if problems.total > SHOWN {
        text.push_str(&format!("\n  ... and {} more", problems.total - SHOWN));
    }
    text
}

impl DataError {
    pub fn fatal(path: &Path, message: impl Into<String>) -> Self {
        DataError::Fatal(Problem::in_file(path, message))
    }

    /// Every problem this error carries, for reports.
    pub fn problems(&self) -> Problems {
        match self {
            DataError::Fatal(p) => {
                let mut all = Problems::with_cap(1);
                all.push(p.clone());
                all
            }
            DataError::Invalid(all) => all.clone(),
        }
    }
}
