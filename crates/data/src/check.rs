//! Full validation of a data source, listing every problem (up to a cap).

use crate::fer2013::read_fer2013;
use crate::ferplus::{check_alignment, read_votes};
use crate::folder::load_folder;
use crate::problem::{DataError, Problems};
use crate::source::DataSource;

/// What a full check found.
#[derive(Debug)]
pub struct CheckReport {
    /// Rows (CSV sources) or image files (folders) looked at.
    pub entries: usize,
    pub problems: Problems,
}

impl CheckReport {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads the whole source, keeping up to `cap` problems in full (all are counted).
/// Problems that stop reading (a truncated file, a wrong header) are reported as one
/// problem each, after which the other files of the source are still checked.
pub fn check(source: &DataSource, cap: usize) -> CheckReport {
    let mut problems = Problems::with_cap(cap);
    let mut entries = 0;
    let fatal = |e: DataError, problems: &mut Problems| problems.extend(e.problems());
    match source {
        DataSource::Fer2013 { csv } => match read_fer2013(csv, cap) {
            Ok(table) => {
                entries = table.rows();
                problems.extend(table.problems);
            }
            Err(e) => fatal(e, &mut problems),
        },
        DataSource::FerPlus { csv, votes, .. } => {
            let fer = read_fer2013(csv, cap);
            let vt = read_votes(votes, cap);
            if let (Ok(f), Ok(v)) = (&fer, &vt) {
                check_alignment(f, v, votes, &mut problems);
            }
            match fer {
                Ok(t) => {
                    entries += t.rows();
                    problems.extend(t.problems);
                }
                Err(e) => fatal(e, &mut problems),
            }
            match vt {
                Ok(t) => {
                    entries += t.rows.len();
                    problems.extend(t.problems);
                }
                Err(e) => fatal(e, &mut problems),
            }
        }
        DataSource::Folder { root } => match load_folder(root) {
            Ok(ds) => {
                entries = ds.total() + ds.skipped.total;
                problems.extend(ds.skipped);
            }
            Err(e) => fatal(e, &mut problems),
        },
    }
    CheckReport { entries, problems }
}
