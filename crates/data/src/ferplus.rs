//! FERPlus: crowd votes from `fer2013new.csv`, joined to fer2013.csv pixels by row position.

use std::collections::HashMap;
use std::path::Path;

use crate::classes::FERPLUS_CLASSES;
use crate::dataset::{Dataset, Origin};
use crate::fer2013::{Fer2013Table, Usage, read_fer2013, usage_splits};
use crate::input::{open_text, read_line, show, split_fields};
use crate::problem::{DEFAULT_PROBLEM_CAP, DataError, Problem, Problems};

/// Vote columns: the 8 emotions, then `unknown` and `NF` (not a face).
pub const VOTE_COLUMNS: usize = 10;
const EMOTIONS: usize = FERPLUS_CLASSES.len();
const HEADER: [&str; 12] = [
    "usage",
    "image name",
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "nf",
];

/// How votes become labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelMode {
    /// FERPlus's rule: single votes dropped, a class needs more than half of the rest.
    #[default]
    Majority,
    /// The plain argmax of the votes.
    Plurality,
    /// The normalised vote vector as a soft target (hard label = its argmax).
    Distribution,
}

impl LabelMode {
    pub fn name(self) -> &'static str {
        match self {
            LabelMode::Majority => "majority",
            LabelMode::Plurality => "plurality",
            LabelMode::Distribution => "distribution",
        }
    }
}

/// One row of fer2013new.csv.
#[derive(Debug, Clone)]
pub struct VoteRow {
    pub usage: Usage,
    pub image_name: String,
    pub votes: [u16; VOTE_COLUMNS],
}

/// The votes file, by row position; rows that failed to parse are `None`.
#[derive(Debug, Default)]
pub struct VoteTable {
    pub rows: Vec<Option<VoteRow>>,
    pub problems: Problems,
}

/// Reads fer2013new.csv (plain or gzip), collecting row problems up to `cap`.
pub fn read_votes(path: &Path, cap: usize) -> Result<VoteTable, DataError> {
    let mut reader = open_text(path)?;
    let mut line = Vec::with_capacity(256);
    if !read_line(&mut *reader, &mut line, path, 0)? {
        return Err(DataError::fatal(
            path,
            "the file is empty; expected the FERPlus header `Usage,Image name,neutral,...`",
        ));
    }
    let header: Vec<String> = split_fields(&line)
        .iter()
        .map(|f| {
            String::from_utf8_lossy(f)
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase()
        })
        .collect();
    if header != HEADER {
        return Err(DataError::Fatal(Problem::at_line(
            path,
            1,
            format!(
                "expected the FERPlus header `Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF`, found `{}`",
                show(&line)
            ),
        )));
    }
    let mut table = VoteTable {
        rows: Vec::new(),
        problems: Problems::with_cap(cap),
    };
    let mut line_no = 1;
    while read_line(&mut *reader, &mut line, path, line_no)? {
        line_no += 1;
        match parse_vote_row(&line) {
            Ok(row) => table.rows.push(Some(row)),
            Err(message) => {
                table
                    .problems
                    .push(Problem::at_line(path, line_no, message));
                table.rows.push(None);
            }
        }
    }
    if table.rows.is_empty() {
        return Err(DataError::Fatal(Problem::at_line(
            path,
            1,
            "the file has a header but no data rows",
        )));
    }
    Ok(table)
}

fn parse_vote_row(line: &[u8]) -> Result<VoteRow, String> {
    let fields = split_fields(line);
    if fields.len() != HEADER.len() {
        return Err(format!(
            "expected {} comma-separated fields, found {}",
            HEADER.len(),
            fields.len()
        ));
    }
    let usage = Usage::parse(fields[0]).ok_or_else(|| {
        format!(
            "unknown Usage `{}`: expected Training, PublicTest or PrivateTest",
            show(fields[0])
        )
    })?;
    let mut votes = [0u16; VOTE_COLUMNS];
    for (i, field) in fields[2..].iter().enumerate() {
        votes[i] = std::str::from_utf8(field)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                format!(
                    "vote for {} is `{}`: expected a non-negative integer",
                    HEADER[i + 2],
                    show(field)
                )
            })?;
    }
    Ok(VoteRow {
        usage,
        image_name: String::from_utf8_lossy(fields[1]).into_owned(),
        votes,
    })
}

/// What the votes of one row say, under a label mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A usable emotion label, with the soft target in `Distribution` mode.
    Label(u32, Option<[f32; EMOTIONS]>),
    /// No usable label: no agreement, or the top vote is `unknown` or not-a-face.
    Unusable,
}

/// Applies a label mode to one row's votes (see [`LabelMode`]).
pub fn verdict(votes: &[u16; VOTE_COLUMNS], mode: LabelMode) -> Verdict {
    // Outlier removal, as FERPlus's own code does: a lone vote is noise.
    let mut v = *votes;
    for x in v.iter_mut() {
        if *x <= 1 {
            *x = 0;
        }
    }
    let label = match mode {
        LabelMode::Majority => {
            let total: u32 = v.iter().map(|&x| x as u32).sum();
            let top = argmax(&v);
            if total == 0 || 2 * v[top] as u32 <= total {
                return Verdict::Unusable;
            }
            top
        }
        LabelMode::Plurality | LabelMode::Distribution => argmax(votes),
    };
    if label >= EMOTIONS || votes[label] == 0 {
        return Verdict::Unusable;
    }
    let soft = (mode == LabelMode::Distribution).then(|| {
        // The cleaned emotion votes, unless cleaning removed them all (every vote single).
        let source = if v[..EMOTIONS].iter().any(|&x| x > 0) {
            &v
        } else {
            votes
        };
        let sum: f32 = source[..EMOTIONS].iter().map(|&x| x as f32).sum();
        std::array::from_fn(|i| source[i] as f32 / sum)
    });
    Verdict::Label(label as u32, soft)
}

/// Index of the largest value; the first one on ties.
fn argmax(values: &[u16]) -> usize {
    let mut best = 0;
    for (i, &x) in values.iter().enumerate() {
        if x > values[best] {
            best = i;
        }
    }
    best
}

/// Checks that a votes table lines up with a fer2013.csv table, row for row.
pub fn check_alignment(
    fer: &Fer2013Table,
    votes: &VoteTable,
    votes_path: &Path,
    problems: &mut Problems,
) {
    if fer.rows() != votes.rows.len() {
        problems.push(Problem::in_file(
            votes_path,
            format!(
                "has {} data rows but the fer2013.csv has {}: FERPlus rows must match fer2013.csv rows one to one",
                votes.rows.len(),
                fer.rows()
            ),
        ));
        return;
    }
    for (i, row) in votes.rows.iter().enumerate() {
        if let (Some(row), Some(usage)) = (row, fer.usages[i])
            && row.usage != usage
        {
            problems.push(Problem::at_line(
                votes_path,
                i + 2,
                format!(
                    "Usage is {} but fer2013.csv row {} is {}: the files do not belong together",
                    row.usage.name(),
                    i,
                    usage.name()
                ),
            ));
        }
    }
}

/// Loads FERPlus: labels from the votes, pixels from fer2013.csv by row position.
///
/// Rows with a blank `Image name` (FERPlus dropped them) and rows without a usable label
/// are left out. When an image name occurs on two rows, FERPlus's PNG (and so its image)
/// is the later row's, so both rows get the later row's pixels.
pub fn load_ferplus(
    fer_path: &Path,
    votes_path: &Path,
    mode: LabelMode,
) -> Result<Dataset, DataError> {
    let fer = read_fer2013(fer_path, DEFAULT_PROBLEM_CAP)?;
    let votes = read_votes(votes_path, DEFAULT_PROBLEM_CAP)?;
    let mut problems = Problems::with_cap(DEFAULT_PROBLEM_CAP);
    problems.extend(fer.problems.clone());
    problems.extend(votes.problems.clone());
    check_alignment(&fer, &votes, votes_path, &mut problems);
    if !problems.is_empty() {
        return Err(DataError::Invalid(problems));
    }
    Ok(build(&fer, &votes, mode))
}

fn build(fer: &Fer2013Table, votes: &VoteTable, mode: LabelMode) -> Dataset {
    let rows: Vec<&VoteRow> = votes
        .rows
        .iter()
        .map(|r| r.as_ref().expect("checked"))
        .collect();
    let mut last_row_of: HashMap<&str, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if !row.image_name.is_empty() {
            last_row_of.insert(row.image_name.as_str(), i);
        }
    }
    let mut splits = usage_splits();
    for (i, row) in rows.iter().enumerate() {
        let Some(&pixel_row) = last_row_of.get(row.image_name.as_str()) else {
            continue;
        };
        let Verdict::Label(label, soft) = verdict(&row.votes, mode) else {
            continue;
        };
        let split = &mut splits[row.usage.index()].samples;
        match soft {
            Some(target) => split.push_soft(fer.image(pixel_row), label, Origin::Row(i), &target),
            None => split.push(fer.image(pixel_row), label, Origin::Row(i)),
        }
    }
    Dataset {
        name: format!("FERPlus ({})", mode.name()),
        classes: FERPLUS_CLASSES.iter().map(|s| s.to_string()).collect(),
        splits,
        skipped: Problems::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn votes(v: [u16; 10]) -> [u16; 10] {
        v
    }

    #[test]
    fn majority_drops_single_votes_and_needs_more_than_half() {
        // 6 neutral, 4 happiness: clear majority.
        assert_eq!(
            verdict(&votes([6, 4, 0, 0, 0, 0, 0, 0, 0, 0]), LabelMode::Majority),
            Verdict::Label(0, None)
        );
        // 5 vs 5: not more than half.
        assert_eq!(
            verdict(&votes([5, 5, 0, 0, 0, 0, 0, 0, 0, 0]), LabelMode::Majority),
            Verdict::Unusable
        );
        // 4 sadness, 3 anger, 1+1+1 singles: singles dropped, 4 of 7 > half.
        assert_eq!(
            verdict(&votes([1, 1, 1, 4, 3, 0, 0, 0, 0, 0]), LabelMode::Majority),
            Verdict::Label(3, None)
        );
        // Majority on unknown / not-a-face is unusable.
        assert_eq!(
            verdict(&votes([2, 0, 0, 0, 0, 0, 0, 0, 8, 0]), LabelMode::Majority),
            Verdict::Unusable
        );
        assert_eq!(
            verdict(&votes([0, 0, 0, 0, 0, 0, 0, 0, 0, 10]), LabelMode::Majority),
            Verdict::Unusable
        );
    }

    #[test]
    fn plurality_takes_the_argmax() {
        assert_eq!(
            verdict(&votes([4, 3, 3, 0, 0, 0, 0, 0, 0, 0]), LabelMode::Plurality),
            Verdict::Label(0, None)
        );
        assert_eq!(
            verdict(&votes([3, 3, 4, 0, 0, 0, 0, 0, 0, 0]), LabelMode::Plurality),
            Verdict::Label(2, None)
        );
        assert_eq!(
            verdict(&votes([2, 0, 0, 0, 0, 0, 0, 0, 5, 3]), LabelMode::Plurality),
            Verdict::Unusable
        );
    }

    #[test]
    fn distribution_is_the_normalised_cleaned_emotion_votes() {
        let Verdict::Label(label, Some(soft)) = verdict(
            &votes([6, 3, 1, 0, 0, 0, 0, 0, 0, 0]),
            LabelMode::Distribution,
        ) else {
            panic!("expected a soft label")
        };
        assert_eq!(label, 0);
        let expected = [6.0 / 9.0, 3.0 / 9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        for (a, b) in soft.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{soft:?}");
        }
    }
}
