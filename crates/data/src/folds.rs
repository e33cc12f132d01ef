//! Splits for honest estimates on little data: stratified K folds that keep each group (a
//! person) in one fold, group keys from file names, and n images per class.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use regex::Regex;

use crate::dataset::{Origin, Samples};

/// The group key of every sample: the first capture group of `re` (or its whole match) in
/// the sample's file name, e.g. the subject id `S005` from `^(S\d+)_` on CK+ names.
pub fn group_keys(samples: &Samples, re: &Regex) -> Result<Vec<String>, String> {
    (0..samples.len())
        .map(|i| match samples.origin(i) {
            Origin::File(path) => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let caps = re.captures(&name).ok_or_else(|| {
                    format!(
                        "{}: the file name does not match --group-regex {re}",
                        path.display()
                    )
                })?;
                let key = caps.get(1).or_else(|| caps.get(0)).expect("a match");
                Ok(key.as_str().to_string())
            }
            Origin::Row(_) => {
                Err("--group-regex reads file names: it needs a folder dataset (--images)".into())
            }
        })
        .collect()
}

/// Assigns each sample a fold in `0..k`: each class spread as evenly as possible over the
/// folds and, with `groups`, all samples of a group in the same fold. Seeded.
///
/// Without groups, each class is shuffled and dealt round the folds (exact stratification).
/// With groups, groups go largest first to the fold where they most reduce the distance
/// between the folds' class counts and an even share (a greedy stratified group K-fold).
pub fn stratified_folds(
    labels: &[u32],
    classes: usize,
    groups: Option<&[String]>,
    k: usize,
    seed: u64,
) -> Result<Vec<usize>, String> {
    if k < 2 {
        return Err(format!("folds must be at least 2, not {k}"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold = vec![0; labels.len()];
    match groups {
        None => {
            let mut next = 0;
            for c in 0..classes as u32 {
                let mut members: Vec<usize> =
                    (0..labels.len()).filter(|&i| labels[i] == c).collect();
                members.shuffle(&mut rng);
                for i in members {
                    fold[i] = next % k;
                    next += 1;
                }
            }
            if labels.len() < k {
                return Err(format!("{} images cannot make {k} folds", labels.len()));
            }
        }
        Some(groups) => {
            let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, g) in groups.iter().enumerate() {
                by_key.entry(g.as_str()).or_default().push(i);
            }
            if by_key.len() < k {
                return Err(format!(
                    "{} groups cannot make {k} folds (each group stays in one fold)",
                    by_key.len()
                ));
            }
            let mut members: Vec<Vec<usize>> = by_key.into_values().collect();
            members.shuffle(&mut rng);
            members.sort_by_key(|m| std::cmp::Reverse(m.len())); // stable: ties stay shuffled
            let mut total = vec![0f64; classes];
            for &l in labels {
                total[l as usize] += 1.0;
            }
            let share: Vec<f64> = total.iter().map(|t| t / k as f64).collect();
            let mut counts = vec![vec![0f64; classes]; k];
            let mut sizes = vec![0usize; k];
            for group in members {
                let mut g = vec![0f64; classes];
                for &i in &group {
                    g[labels[i] as usize] += 1.0;
                }
                let cost = |f: usize| -> f64 {
                    (0..classes)
                        .filter(|&c| total[c] > 0.0)
                        .map(|c| {
                            let after = counts[f][c] + g[c] - share[c];
                            let before = counts[f][c] - share[c];
                            (after * after - before * before) / total[c]
                        })
                        .sum()
                };
                let best = (0..k)
                    .min_by(|&a, &b| cost(a).total_cmp(&cost(b)).then(sizes[a].cmp(&sizes[b])))
                    .expect("k >= 2");
                for &i in &group {
                    fold[i] = best;
                }
                for c in 0..classes {
                    counts[best][c] += g[c];
                }
                sizes[best] += group.len();
            }
        }
    }
    Ok(fold)
}

/// Indices of `n` samples of each class (every sample of a class with fewer; all samples
/// when `n` is `None`), drawn with `seed`, in ascending order.
pub fn per_class(labels: &[u32], classes: usize, n: Option<usize>, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = Vec::new();
    for c in 0..classes as u32 {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        members.shuffle(&mut rng);
        members.truncate(n.unwrap_or(usize::MAX));
        chosen.extend(members);
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 7 classes of unequal size, 40 people with 2-9 images each.
    fn people() -> (Vec<u32>, Vec<String>) {
        let (mut labels, mut groups) = (Vec::new(), Vec::new());
        for person in 0..40u32 {
            for j in 0..(2 + person % 8) {
                labels.push((person + j) % 7);
                groups.push(format!("S{person:03}"));
            }
        }
        (labels, groups)
    }

    #[test]
    fn folds_without_groups_are_exactly_stratified_and_cover_everything() {
        let (labels, _) = people();
        let k = 5;
        let fold = stratified_folds(&labels, 7, None, k, 1).unwrap();
        assert_eq!(fold.len(), labels.len());
        for c in 0..7 {
            let per_fold: Vec<usize> = (0..k)
                .map(|f| {
                    (0..labels.len())
                        .filter(|&i| labels[i] == c && fold[i] == f)
                        .count()
                })
                .collect();
            let (lo, hi) = (
                per_fold.iter().min().unwrap(),
                per_fold.iter().max().unwrap(),
            );
            assert!(hi - lo <= 1, "class {c}: {per_fold:?}");
        }
        assert_ne!(
            fold,
            stratified_folds(&labels, 7, None, k, 2).unwrap(),
            "seeded"
        );
        assert_eq!(
            fold,
            stratified_folds(&labels, 7, None, k, 1).unwrap(),
            "reproducible"
        );
    }

    #[test]
    fn a_group_never_spans_two_folds_and_classes_stay_balanced() {
        let (labels, groups) = people();
        let k = 4;
        let fold = stratified_folds(&labels, 7, Some(&groups), k, 3).unwrap();
        for (i, g) in groups.iter().enumerate() {
            for (j, h) in groups.iter().enumerate() {
                if g == h {
                    assert_eq!(fold[i], fold[j], "{g} split across folds");
                }
            }
        }
        for c in 0..7 {
            let total = labels.iter().filter(|&&l| l == c).count() as f64;
            for f in 0..k {
                let n = (0..labels.len())
                    .filter(|&i| labels[i] == c && fold[i] == f)
                    .count();
                let share = n as f64 / total;
                assert!(
                    (share - 0.25).abs() < 0.15,
                    "class {c} fold {f}: {share:.2}"
                );
            }
        }
        let err = stratified_folds(&labels, 7, Some(&groups[..5]), 4, 0).unwrap_err();
        assert!(err.contains("groups cannot make 4 folds"), "{err}");
    }

    #[test]
    fn per_class_takes_n_of_each_or_all_of_a_small_class() {
        let labels: Vec<u32> = (0..100).map(|i| if i < 90 { i % 3 } else { 3 }).collect();
        let chosen = per_class(&labels, 4, Some(20), 5);
        let count = |c| chosen.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!([count(0), count(1), count(2), count(3)], [20, 20, 20, 10]);
        assert!(chosen.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(per_class(&labels, 4, None, 5).len(), 100);
    }

    #[test]
    fn group_keys_come_from_file_names() {
        let mut s = Samples::default();
        let plane = [0u8; crate::face::PIXELS];
        s.push(
            &plane,
            0,
            Origin::File("ck/happy/S005_001_00000011.png".into()),
        );
        s.push(
            &plane,
            1,
            Origin::File("ck/sad/S010_004_00000019.png".into()),
        );
        let re = Regex::new(r"^(S\d+)_").unwrap();
        assert_eq!(group_keys(&s, &re).unwrap(), ["S005", "S010"]);
        s.push(&plane, 1, Origin::File("ck/sad/subject7.png".into()));
        let err = group_keys(&s, &re).unwrap_err();
        assert!(
            err.contains("subject7.png") && err.contains("does not match"),
            "{err}"
        );
    }
}
