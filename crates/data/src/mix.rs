//! Mixing the faces of a training batch: mixup (Zhang et al. 2018) blends two whole faces,
//! CutMix (Yun et al. 2019) pastes a rectangle of one face into another, and the targets
//! mix in the same shares. Both train on examples between the classes, against the
//! overconfidence that noisy labels (FER2013 has many) reward.
//!
//! It works on a batch after augmentation and normalisation: a blend of normalised pixels
//! is the normalisation of the blend, so the order does not matter. One share and one
//! rectangle per batch, as both papers' own code does.

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use crate::face::{PIXELS, SIDE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MixKind {
    /// Every pixel the weighted mean of the two faces.
    Mixup,
    /// A rectangle of the partner face pasted in; the share is the area kept.
    Cutmix,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MixConfig {
    pub kind: MixKind,
    /// The face's own share is drawn from Beta(alpha, alpha): small alphas keep most
    /// examples close to one face, 1 draws the share uniformly.
    pub alpha: f32,
    /// Share of the batches mixed; the others train on their faces as they are.
    pub prob: f32,
}

impl MixConfig {
    pub fn check(&self) -> Result<(), String> {
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return Err(format!(
                "the mixing alpha must be a positive number, not {}",
                self.alpha
            ));
        }
        if !(0.0..=1.0).contains(&self.prob) {
            return Err(format!(
                "the share of mixed batches must be between 0 and 1, not {}",
                self.prob
            ));
        }
        Ok(())
    }
}

/// Mixes a batch in place: `images` holds `labels.len()` normalised faces, `targets` their
/// target distributions over `classes`. Each face is mixed with a partner drawn by a random
/// permutation of the batch; its label becomes the label of the larger share (for the
/// training accuracy). Returns the faces' own share, or `None` when this batch is not
/// mixed. The same `seed` mixes the same way.
pub fn mix_batch(
    cfg: &MixConfig,
    images: &mut [f32],
    targets: &mut [f32],
    labels: &mut [u32],
    classes: usize,
    seed: u64,
) -> Option<f32> {
    let n = labels.len();
    assert_eq!(images.len(), n * PIXELS, "images of the batch");
    assert_eq!(targets.len(), n * classes, "targets of the batch");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if n < 2 || rng.random::<f32>() >= cfg.prob {
        return None;
    }
    let lambda: f32 = Beta::new(cfg.alpha, cfg.alpha)
        .expect("alpha checked positive")
        .sample(&mut rng);
    let mut partner: Vec<usize> = (0..n).collect();
    partner.shuffle(&mut rng);
    let faces = images.to_vec();
    let share = match cfg.kind {
        MixKind::Mixup => {
            blend(images, &faces, &partner, PIXELS, lambda);
            lambda
        }
        MixKind::Cutmix => {
            // A square of (1 - lambda) of the face, centred anywhere and clipped at the
            // border; the share is what the clipped square leaves.
            let half = SIDE as f32 * (1.0 - lambda).sqrt() / 2.0;
            let (cy, cx) = (
                rng.random::<f32>() * SIDE as f32,
                rng.random::<f32>() * SIDE as f32,
            );
            let span = |c: f32| {
                let lo = (c - half).round().clamp(0.0, SIDE as f32) as usize;
                let hi = (c + half).round().clamp(0.0, SIDE as f32) as usize;
                lo..hi
            };
            let (rows, cols) = (span(cy), span(cx));
            for (i, &j) in partner.iter().enumerate() {
                for y in rows.clone() {
                    let at = y * SIDE + cols.start..y * SIDE + cols.end;
                    images[i * PIXELS..][at.clone()].copy_from_slice(&faces[j * PIXELS..][at]);
                }
            }
            1.0 - (rows.len() * cols.len()) as f32 / PIXELS as f32
        }
    };
    let before = targets.to_vec();
    blend(targets, &before, &partner, classes, share);
    if share < 0.5 {
        let own = labels.to_vec();
        for (label, &j) in labels.iter_mut().zip(&partner) {
            *label = own[j];
        }
    }
    Some(share)
}

/// Row `i` of `out` (rows of `width`) becomes `share` of row `i` of `rows` and the rest of
/// row `partner[i]`.
fn blend(out: &mut [f32], rows: &[f32], partner: &[usize], width: usize, share: f32) {
    for (i, &j) in partner.iter().enumerate() {
        let (own, other) = (&rows[i * width..][..width], &rows[j * width..][..width]);
        for ((o, &a), &b) in out[i * width..][..width].iter_mut().zip(own).zip(other) {
            *o = share * a + (1.0 - share) * b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of `n` faces, face `i` filled with the value `i` and labelled class `i % 3`.
    fn batch(n: usize) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
        let images = (0..n).flat_map(|i| vec![i as f32; PIXELS]).collect();
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let targets = labels
            .iter()
            .flat_map(|&l| (0..3).map(move |c| f32::from(c == l)))
            .collect();
        (images, targets, labels)
    }

    fn mixed(kind: MixKind, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<u32>, Option<f32>) {
        let (mut images, mut targets, mut labels) = batch(8);
        let cfg = MixConfig {
            kind,
            alpha: 1.0,
            prob: 1.0,
        };
        let share = mix_batch(&cfg, &mut images, &mut targets, &mut labels, 3, seed);
        (images, targets, labels, share)
    }

    #[test]
    fn mixup_blends_each_face_with_one_partner_in_the_targets_shares() {
        for seed in 0..20 {
            let (images, targets, labels, share) = mixed(MixKind::Mixup, seed);
            let share = share.expect("prob 1 mixes every batch");
            assert!((0.0..=1.0).contains(&share));
            for i in 0..8 {
                let face = &images[i * PIXELS..][..PIXELS];
                // Every pixel is the same blend, share * i + (1 - share) * j.
                assert!(face.iter().all(|&p| (p - face[0]).abs() < 1e-4));
                let j = if share < 1.0 {
                    ((face[0] - share * i as f32) / (1.0 - share)).round() as usize
                } else {
                    i
                };
                assert!(j < 8, "partner {j} of face {i}");
                assert!((share * i as f32 + (1.0 - share) * j as f32 - face[0]).abs() < 1e-3);
                let t = &targets[i * 3..][..3];
                assert!(
                    (t.iter().sum::<f32>() - 1.0).abs() < 1e-5,
                    "targets sum to 1"
                );
                let mut want = [0.0f32; 3];
                want[i % 3] += share;
                want[j % 3] += 1.0 - share;
                for c in 0..3 {
                    assert!(
                        (t[c] - want[c]).abs() < 1e-4,
                        "face {i} class {c}: {t:?} {want:?}"
                    );
                }
                let dominant = if share < 0.5 { j } else { i };
                assert_eq!(labels[i], (dominant % 3) as u32);
            }
        }
    }

    #[test]
    fn cutmix_pastes_one_rectangle_whose_area_sets_the_share() {
        let mut pasted_somewhere = false;
        for seed in 0..20 {
            let (images, targets, _, share) = mixed(MixKind::Cutmix, seed);
            let share = share.expect("prob 1 mixes every batch");
            for i in 0..8 {
                let face = &images[i * PIXELS..][..PIXELS];
                let foreign: Vec<usize> = (0..PIXELS).filter(|&p| face[p] != i as f32).collect();
                // Pixels from another face (a partner can be the face itself: none then).
                let j = foreign.first().map_or(i, |&p| face[p] as usize);
                if j != i {
                    pasted_somewhere = true;
                    assert!(foreign.iter().all(|&p| face[p] == j as f32), "one partner");
                    let (ys, xs): (Vec<usize>, Vec<usize>) =
                        foreign.iter().map(|&p| (p / SIDE, p % SIDE)).unzip();
                    let h = ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1;
                    let w = xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1;
                    assert_eq!(h * w, foreign.len(), "a filled rectangle");
                    assert!((1.0 - share - foreign.len() as f32 / PIXELS as f32).abs() < 1e-6);
                }
                let mut want = [0.0f32; 3];
                want[i % 3] += share;
                want[j % 3] += 1.0 - share;
                let t = &targets[i * 3..][..3];
                for c in 0..3 {
                    assert!(
                        (t[c] - want[c]).abs() < 1e-5,
                        "face {i} class {c}: {t:?} {want:?}"
                    );
                }
            }
        }
        assert!(pasted_somewhere);
    }

    #[test]
    fn same_seed_same_mix_and_prob_zero_leaves_the_batch_alone() {
        assert_eq!(mixed(MixKind::Cutmix, 7), mixed(MixKind::Cutmix, 7));
        assert_ne!(mixed(MixKind::Mixup, 7).0, mixed(MixKind::Mixup, 8).0);
        let (mut images, mut targets, mut labels) = batch(8);
        let before = (images.clone(), targets.clone(), labels.clone());
        let cfg = MixConfig {
            kind: MixKind::Mixup,
            alpha: 0.4,
            prob: 0.0,
        };
        assert_eq!(
            mix_batch(&cfg, &mut images, &mut targets, &mut labels, 3, 1),
            None
        );
        assert_eq!((images, targets, labels), before);
    }

    #[test]
    fn check_names_the_bad_setting() {
        let bad = MixConfig {
            kind: MixKind::Mixup,
            alpha: 0.0,
            prob: 0.5,
        };
        assert!(bad.check().unwrap_err().contains("alpha"));
        let bad = MixConfig {
            alpha: 0.2,
            prob: 1.5,
            ..bad
        };
        assert!(bad.check().unwrap_err().contains("between 0 and 1"));
    }
}
