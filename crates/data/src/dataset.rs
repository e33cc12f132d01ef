//! The in-memory dataset every source is loaded into.

use std::path::PathBuf;

use crate::face::PIXELS;
use crate::problem::Problems;

/// What a split is for. Model selection uses `Val`; reported scores use `Test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitRole {
    Train,
    Val,
    Test,
}

/// Where a sample came from: its 0-based data row in a CSV, or its image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Row(usize),
    File(PathBuf),
}

/// Images and their labels, stored compactly: 48x48 u8 planes back to back.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pixels: Vec<u8>,
    labels: Vec<u32>,
    origins: Vec<Origin>,
    /// Soft targets (`len() * classes` probabilities), present for FERPlus vote distributions.
    soft: Option<Vec<f32>>,
}

impl Samples {
    pub fn push(&mut self, plane: &[u8], label: u32, origin: Origin) {
        assert_eq!(plane.len(), PIXELS, "a face plane has {PIXELS} pixels");
        assert!(
            self.soft.is_none(),
            "use push_soft on samples that carry soft targets"
        );
        self.pixels.extend_from_slice(plane);
        self.labels.push(label);
        self.origins.push(origin);
    }

    /// Adds a sample with a soft target; all samples of a set must then have one.
    pub fn push_soft(&mut self, plane: &[u8], label: u32, origin: Origin, target: &[f32]) {
        assert!(
            self.soft.is_some() || self.labels.is_empty(),
            "cannot mix hard-only and soft samples"
        );
        self.pixels.extend_from_slice(plane);
        self.labels.push(label);
        self.origins.push(origin);
        self.soft
            .get_or_insert_with(Vec::new)
            .extend_from_slice(target);
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }

    pub fn label(&self, i: usize) -> u32 {
        self.labels[i]
    }

    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    pub fn origin(&self, i: usize) -> &Origin {
        &self.origins[i]
    }

    /// The soft target of sample `i`, if this set carries them.
    pub fn soft_target(&self, i: usize, classes: usize) -> Option<&[f32]> {
        self.soft
            .as_ref()
            .map(|s| &s[i * classes..(i + 1) * classes])
    }

    pub fn has_soft_targets(&self) -> bool {
        self.soft.is_some()
    }

    /// Replaces every image by `f(index, image)`.
    pub fn map_images(&mut self, f: impl Fn(usize, &[u8]) -> [u8; PIXELS]) {
        for (i, plane) in self.pixels.chunks_exact_mut(PIXELS).enumerate() {
            let new = f(i, plane);
            plane.copy_from_slice(&new);
        }
    }

    /// A new set holding the samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize], classes: usize) -> Samples {
        let mut out = Samples::default();
        for &i in indices {
            match self.soft_target(i, classes) {
                Some(t) => out.push_soft(self.image(i), self.labels[i], self.origins[i].clone(), t),
                None => out.push(self.image(i), self.labels[i], self.origins[i].clone()),
            }
        }
        out
    }

    /// The same samples with these soft targets (`len() * classes` probabilities, sample
    /// by sample), replacing any they had.
    pub fn with_soft_targets(&self, targets: Vec<f32>, classes: usize) -> Samples {
        assert_eq!(targets.len(), self.len() * classes, "one target per sample");
        Samples {
            pixels: self.pixels.clone(),
            labels: self.labels.clone(),
            origins: self.origins.clone(),
            soft: Some(targets),
        }
    }

    /// Number of samples per class index.
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}

#[derive(Debug, Clone)]
pub struct Split {
    /// The source's own name: "Training", "PublicTest", "PrivateTest" or "train", "val", "test".
    pub name: String,
    pub role: SplitRole,
    pub samples: Samples,
}

/// A labelled set of face images in one or more splits.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Short description, e.g. "FER2013" or "FERPlus (majority)".
    pub name: String,
    /// Class names in label order, in the source's own spelling.
    pub classes: Vec<String>,
    pub splits: Vec<Split>,
    /// Files that were found but could not be used (folder datasets); reported, never hidden.
    pub skipped: Problems,
}

impl Dataset {
    /// The split with this name (case-insensitive) or role name ("train", "val", "test").
    pub fn split(&self, name: &str) -> Option<&Split> {
        self.splits
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .or_else(|| {
                let role = crate::folder::split_role_from_name(name)?;
                self.splits.iter().find(|s| s.role == role)
            })
    }

    pub fn split_by_role(&self, role: SplitRole) -> Option<&Split> {
        self.splits.iter().find(|s| s.role == role)
    }

    pub fn total(&self) -> usize {
        self.splits.iter().map(|s| s.samples.len()).sum()
    }

    /// Every sample of every split in one set (for cross-validation), split by split. Soft
    /// targets are kept when every split has them.
    pub fn pooled(&self) -> Samples {
        let soft = self.splits.iter().all(|s| s.samples.has_soft_targets());
        let mut out = Samples::default();
        for split in &self.splits {
            let s = &split.samples;
            for i in 0..s.len() {
                match s.soft_target(i, self.classes.len()).filter(|_| soft) {
                    Some(t) => out.push_soft(s.image(i), s.label(i), s.origin(i).clone(), t),
                    None => out.push(s.image(i), s.label(i), s.origin(i).clone()),
                }
            }
        }
        out
    }

    /// Names of the splits, for error messages.
    pub fn split_names(&self) -> String {
        self.splits
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
