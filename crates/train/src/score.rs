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
    }
    Report {
        classes: scored.iter().map(|&c| dataset_classes[c].clone()).collect(),
        accuracy: confusion.accuracy(),
        macro_f1: confusion.macro_f1(),
        per_class: confusion.per_class(),
        n: probs.len(),
        confusion,
        left_out,
    }
}
