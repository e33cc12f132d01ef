//! Scoring a model on a labelled split, matching classes by name.

use burn::tensor::Device;
use ferrite_data::Samples;
use ferrite_data::classes::map_classes;
use serde::Serialize;

use crate::metrics::{ClassScores, Confusion};
use ferrite_model::Ensemble;
use ferrite_model::predict::Tta;

/// The score of a model on a split.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The classes scored: the dataset's classes the model knows, in dataset order.
    pub classes: Vec<String>,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassScores>,
    pub confusion: Confusion,
    /// Samples scored.
    pub n: usize,
    /// Dataset classes the model does not know, with their sample counts (not scored).
    pub left_out: Vec<(String, usize)>,
    /// Whether each scored sample was predicted right, in order (for paired tests).
    #[serde(skip)]
    pub correct: Vec<bool>,
}

/// McNemar's paired test of two models on the same samples: do they differ more than
/// chance would make them?
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct McNemar {
    /// Samples the first model got right and the second wrong.
    pub only_first: usize,
    /// Samples the second model got right and the first wrong.
    pub only_second: usize,
    /// Two-sided exact p-value (binomial over the discordant samples).
    pub p_value: f64,
}

/// McNemar's exact test on the per-sample correctness of two models.
pub fn mcnemar(first: &[bool], second: &[bool]) -> McNemar {
    assert_eq!(first.len(), second.len(), "the same samples");
    let only_first = first
        .iter()
        .zip(second)
        .filter(|(a, b)| **a && !**b)
        .count();
    let only_second = first
        .iter()
        .zip(second)
        .filter(|(a, b)| !**a && **b)
        .count();
    let n = only_first + only_second;
    let k = only_first.min(only_second);
    // P(X <= k) for X ~ Binomial(n, 1/2), in logs (n reaches thousands), doubled.
    let ln_choose =
        |n: usize, i: usize| -> f64 { ln_factorial(n) - ln_factorial(i) - ln_factorial(n - i) };
    let tail: f64 = (0..=k)
        .map(|i| (ln_choose(n, i) - n as f64 * std::f64::consts::LN_2).exp())
        .sum();
    McNemar {
        only_first,
        only_second,
        p_value: if n == 0 { 1.0 } else { (2.0 * tail).min(1.0) },
    }
}

fn ln_factorial(n: usize) -> f64 {
    (2..=n).map(|i| (i as f64).ln()).sum()
}

/// Scores `models` (one, or an ensemble) on `samples` (labelled with `dataset_classes`). Each dataset class is
/// matched to a model class through the canonical emotion vocabulary; samples of classes
/// the model lacks are left out, and the prediction is the most probable of the classes
/// being scored (a FERPlus model scored on FER2013 cannot answer "contempt").
pub fn score(
    models: &Ensemble,
    samples: &Samples,
    dataset_classes: &[String],
    tta: Tta,
    device: &Device,
    progress: impl FnMut(usize),
) -> Report {
    let to_model = map_classes(dataset_classes, &models.meta().classes);
    let scored: Vec<usize> = (0..dataset_classes.len())
        .filter(|&c| to_model[c].is_some())
        .collect();
    let counts = samples.class_counts(dataset_classes.len());
    let left_out = (0..dataset_classes.len())
        .filter(|&c| to_model[c].is_none())
        .map(|c| (dataset_classes[c].clone(), counts[c]))
        .collect();

    let keep: Vec<usize> = (0..samples.len())
        .filter(|&i| to_model[samples.label(i) as usize].is_some())
        .collect();
    let subset = samples.subset(&keep, dataset_classes.len());
    let probs = models.predict_samples(&subset, tta, 256, device, progress);

    let mut confusion = Confusion::new(scored.len());
    let mut correct = Vec::with_capacity(probs.len());
    for (i, p) in probs.iter().enumerate() {
        let truth = scored
            .iter()
            .position(|&c| c == subset.label(i) as usize)
            .expect("kept samples are scored");
        let predicted = (0..scored.len())
            .max_by(|&a, &b| {
                p[to_model[scored[a]].unwrap()].total_cmp(&p[to_model[scored[b]].unwrap()])
            })
            .expect("at least one class");
        confusion.add(truth, predicted);
        correct.push(truth == predicted);
    }
    Report {
        classes: scored.iter().map(|&c| dataset_classes[c].clone()).collect(),
        accuracy: confusion.accuracy(),
        macro_f1: confusion.macro_f1(),
        per_class: confusion.per_class(),
        n: probs.len(),
        confusion,
        left_out,
        correct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_counts_the_discordant_samples_and_gives_the_exact_p_value() {
        // 10 right only by the first, 2 only by the second, 88 alike.
        let mut a = vec![true; 10];
        a.extend([false; 2]);
        a.extend([true; 50]);
        a.extend([false; 38]);
        let mut b = vec![false; 10];
        b.extend([true; 2]);
        b.extend([true; 50]);
        b.extend([false; 38]);
        let t = mcnemar(&a, &b);
        assert_eq!((t.only_first, t.only_second), (10, 2));
        // 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * 79 / 4096.
        assert!(
            (t.p_value - 2.0 * 79.0 / 4096.0).abs() < 1e-12,
            "{}",
            t.p_value
        );
        assert_eq!(mcnemar(&a, &a).p_value, 1.0);
        // Large counts stay finite: 1000 against 1100 is not chance.
        let big_a: Vec<bool> = (0..2100).map(|i| i < 1000).collect();
        let big_b: Vec<bool> = (0..2100).map(|i| i >= 1000).collect();
        let p = mcnemar(&big_a, &big_b).p_value;
        assert!(p > 0.0 && p < 0.05, "{p}");
    }
}
