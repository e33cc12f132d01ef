//! Writing a dataset out as PNG files in `DIR/<split>/<class>/`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{Dataset, Origin};
use crate::face::plane_to_image;

/// Writes every image of `dataset` (or of the named splits only) as a PNG in
/// `out/<split>/<class>/`. Rows from a CSV are named `row<N>.png` after their 0-based data
/// row; files keep their stem. Returns the number of files written.
pub fn export_png(dataset: &Dataset, out: &Path, only_splits: &[String]) -> Result<usize, String> {
    let mut jobs: Vec<(PathBuf, usize, usize)> = Vec::new(); // (path, split, index)
    for (s, split) in dataset.splits.iter().enumerate() {
        if !only_splits.is_empty()
            && !only_splits
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&split.name))
        {
            continue;
        }
        let mut used: HashSet<PathBuf> = HashSet::new();
        for i in 0..split.samples.len() {
            let class = &dataset.classes[split.samples.label(i) as usize];
            let dir = out.join(&split.name).join(sanitize(class));
            let stem = match split.samples.origin(i) {
                Origin::Row(r) => format!("row{r:05}"),
                Origin::File(p) => p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("{i:05}")),
            };
            let mut path = dir.join(format!("{stem}.png"));
            let mut n = 1;
            while !used.insert(path.clone()) {
                n += 1;
                path = dir.join(format!("{stem}_{n}.png"));
            }
            jobs.push((path, s, i));
        }
    }
    let dirs: HashSet<&Path> = jobs.iter().filter_map(|(p, _, _)| p.parent()).collect();
    for dir in dirs {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create folder: {e}", dir.display()))?;
    }
    jobs.par_iter().try_for_each(|(path, s, i)| {
        plane_to_image(dataset.splits[*s].samples.image(*i))
            .save(path)
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))
    })?;
    Ok(jobs.len())
}

/// Class names become folder names: keep them readable, but never a path separator.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' {
                '_'
            } else {
                c
            }
        })
        .collect()
}
