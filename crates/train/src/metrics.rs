//! Classification metrics from a confusion matrix.

use serde::Serialize;

/// `counts[true][predicted]` over `classes` classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    pub counts: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Number of true samples of this class.
    pub support: u64,
}

impl Confusion {
    pub fn new(classes: usize) -> Self {
        Confusion {
            counts: vec![vec![0; classes]; classes],
        }
    }

    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        ratio(correct, self.total())
    }

    pub fn per_class(&self) -> Vec<ClassScores> {
        let n = self.counts.len();
        (0..n)
            .map(|c| {
                let tp = self.counts[c][c];
                let support: u64 = self.counts[c].iter().sum();
                let predicted: u64 = (0..n).map(|t| self.counts[t][c]).sum();
                let precision = ratio(tp, predicted);
                let recall = ratio(tp, support);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassScores {
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect()
    }

    /// Mean F1 over the classes that have at least one true sample.
    pub fn macro_f1(&self) -> f64 {
        let scores: Vec<f64> = self
            .per_class()
            .iter()
            .filter(|s| s.support > 0)
            .map(|s| s.f1)
            .collect();
        if scores.is_empty() {
            0.0
        } else {
            scores.iter().sum::<f64>() / scores.len() as f64
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_from_a_hand_made_matrix() {
        let mut m = Confusion::new(3);
        // class 0: 3 right, 1 called class 1; class 1: 2 right; class 2: 1 called class 0.
        for (t, p) in [(0, 0), (0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (2, 0)] {
            m.add(t, p);
        }
        assert_eq!(m.counts, vec![vec![3, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]);
        assert!((m.accuracy() - 5.0 / 7.0).abs() < 1e-12);
        let s = m.per_class();
        assert!((s[0].precision - 0.75).abs() < 1e-12 && (s[0].recall - 0.75).abs() < 1e-12);
        assert!((s[1].precision - 2.0 / 3.0).abs() < 1e-12 && (s[1].recall - 1.0).abs() < 1e-12);
        assert_eq!(s[2].f1, 0.0);
        let f1_1 = 2.0 * (2.0 / 3.0) / (2.0 / 3.0 + 1.0);
        assert!((m.macro_f1() - (0.75 + f1_1 + 0.0) / 3.0).abs() < 1e-12);
    }
}
