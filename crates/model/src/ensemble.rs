//! Ensembles: several models of the same classes, their probabilities averaged. A single
//! model is an ensemble of one, so every command takes either.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use ferrite_data::Samples;

use crate::file::{self, ModelFileError};
use crate::predict::{Tta, in_batches, predict_planes};
use crate::{ModelMeta, Network};

/// One or more models with the same classes, in the same order.
pub struct Ensemble {
    members: Vec<(Network, ModelMeta)>,
}

impl Ensemble {
    pub fn one(net: Network, meta: ModelMeta) -> Ensemble {
        Ensemble {
            members: vec![(net, meta)],
        }
    }

    /// Loads the model files of an ensemble; they must name the same classes in the same
    /// order.
    pub fn load(paths: &[PathBuf], device: &Device) -> Result<Ensemble, ModelFileError> {
        let mut members: Vec<(Network, ModelMeta)> = Vec::with_capacity(paths.len());
        for path in paths {
            let (net, meta) = file::load(path, device)?;
            if let Some((_, first)) = members.first()
                && first.classes != meta.classes
            {
                return Err(ModelFileError::NotAModel {
                    path: path.display().to_string(),
                    reason: format!(
                        "its classes ({}) differ from those of {} ({}): an ensemble's models must share their classes, in order",
                        meta.classes.join(", "),
                        paths[0].display(),
                        first.classes.join(", ")
                    ),
                });
            }
            members.push((net, meta));
        }
        if members.is_empty() {
            return Err(ModelFileError::NotAModel {
                path: String::new(),
                reason: "an ensemble needs at least one model file".into(),
            });
        }
        Ok(Ensemble { members })
    }

    /// The first model's metadata; the classes are every member's.
    pub fn meta(&self) -> &ModelMeta {
        &self.members[0].1
    }

    /// How many models are averaged.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Class probabilities of raw face planes: each member's (with its own input
    /// normalization), averaged.
    pub fn predict_planes(&self, planes: &[&[u8]], tta: Tta, device: &Device) -> Vec<Vec<f32>> {
        let mut sum: Vec<Vec<f32>> = Vec::new();
        for (net, meta) in &self.members {
            let probs = predict_planes(net, planes, &meta.normalization, tta, device);
            if sum.is_empty() {
                sum = probs;
            } else {
                for (s, p) in sum.iter_mut().zip(probs) {
                    s.iter_mut().zip(p).for_each(|(s, p)| *s += p);
                }
            }
        }
        let k = self.members.len() as f32;
        if k > 1.0 {
            sum.iter_mut().flatten().for_each(|s| *s /= k);
        }
        sum
    }

    /// Class probabilities of every sample of a set, in order, `batch` faces at a time.
    pub fn predict_samples(
        &self,
        samples: &Samples,
        tta: Tta,
        batch: usize,
        device: &Device,
        progress: impl FnMut(usize),
    ) -> Vec<Vec<f32>> {
        in_batches(samples, batch, progress, |planes| {
            self.predict_planes(planes, tta, device)
        })
    }
}

/// How an ensemble is named in outputs: its files joined by " + ".
pub fn describe(paths: &[impl AsRef<Path>]) -> String {
    paths
        .iter()
        .map(|p| p.as_ref().display().to_string())
        .collect::<Vec<_>>()
        .join(" + ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ArchConfig, ArchKind};
    use ferrite_data::face::PIXELS;

    fn classes(n: usize) -> Vec<String> {
        (0..n).map(|c| format!("class{c}")).collect()
    }

    #[test]
    fn an_ensemble_averages_what_its_members_say() {
        let device = Device::flex();
        let cfg = ArchConfig::new(ArchKind::Ferrite, 7);
        let meta = ModelMeta::new(cfg.clone(), classes(7), "test");
        // Two networks with their own random weights, and two face-like planes.
        let (a, b) = (cfg.init(&device), cfg.init(&device));
        let planes: Vec<Vec<u8>> = (0..2)
            .map(|k| (0..PIXELS).map(|i| ((i * (k + 3)) % 251) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = planes.iter().map(|p| &p[..]).collect();
        let norm = &meta.normalization;
        let pa = predict_planes(&a, &refs, norm, Tta::Flip, &device);
        let pb = predict_planes(&b, &refs, norm, Tta::Flip, &device);
        let both = Ensemble {
            members: vec![(a, meta.clone()), (b, meta)],
        };
        let pe = both.predict_planes(&refs, Tta::Flip, &device);
        assert_ne!(pa, pb, "the members differ");
        for ((e, a), b) in pe.iter().zip(&pa).zip(&pb) {
            for ((e, a), b) in e.iter().zip(a).zip(b) {
                assert!((e - (a + b) / 2.0).abs() < 1e-6, "{e} vs {a} and {b}");
            }
        }
        assert_eq!(both.len(), 2);
    }

    #[test]
    fn models_of_other_classes_do_not_make_an_ensemble() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let paths: Vec<PathBuf> = [7usize, 8]
            .iter()
            .map(|&n| {
                let cfg = ArchConfig::new(ArchKind::Ferrite, n);
                let path = dir.path().join(format!("m{n}.safetensors"));
                file::save(
                    &path,
                    &cfg.init(&device),
                    &ModelMeta::new(cfg, classes(n), "test"),
                )
                .unwrap();
                path
            })
            .collect();
        let err = Ensemble::load(&paths, &device).err().unwrap().to_string();
        assert!(
            err.contains("m8.safetensors") && err.contains("share their classes"),
            "{err}"
        );
        assert_eq!(Ensemble::load(&paths[..1], &device).unwrap().len(), 1);
    }
}
