//! Training settings, saved as `config.json` in the run folder.

use ferrite_data::augment::AugmentConfig;
use ferrite_data::mix::MixConfig;
use ferrite_model::ArchKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam with decoupled weight decay (epsilon 1e-8, as PyTorch, not burn's 1e-5).
    AdamW,
    /// SGD with Nesterov momentum and no dampening (PyTorch's behaviour).
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// Linear warm-up, then cosine decay to 0, per step.
    Cosine,
    /// One-cycle (Smith 2018): up to the peak over the first 30 %, cosine down to peak/1e4.
    OneCycle,
    /// Divide the rate by 10 when validation loss has not improved for `patience` epochs.
    Plateau,
    /// The peak throughout, after the linear warm-up: for weight averaging (SWA), whose
    /// average gains from weights that keep moving.
    Constant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub arch: ArchKind,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub schedule: ScheduleKind,
    pub warmup_epochs: f64,
    /// Epochs without improvement before a plateau schedule cuts the rate.
    pub patience: usize,
    pub label_smoothing: f64,
    /// Weight each class's loss by the inverse of its frequency.
    pub class_weights: bool,
    pub dropout: Option<f64>,
    pub augment: AugmentConfig,
    pub seed: u64,
    /// Train on the first N training images only (quick experiments).
    pub limit: Option<usize>,
    pub device: String,
    /// Stages of the network held fixed (fine-tuning).
    #[serde(default)]
    pub freeze: usize,
    /// Stop when validation accuracy has not improved for this many epochs.
    #[serde(default)]
    pub early_stop: Option<usize>,
    /// The model a fine-tuning run started from (a file, or "built-in"); `None`: scratch.
    #[serde(default)]
    pub from: Option<String>,
    /// Distillation: the teacher model files (an ensemble when several), whose
    /// probabilities on the training images are mixed into the targets; empty: none.
    #[serde(default)]
    pub teacher: Vec<String>,
    /// The teacher's share of each target (the rest is the label).
    #[serde(default)]
    pub teacher_weight: f64,
    /// Weight averaging: keep the mean of the weights at the end of each of the last N
    /// epochs, saved as `average.safetensors` at the end of the run; 0: none.
    #[serde(default)]
    pub average_epochs: usize,
    /// Mixup or CutMix of the faces of each batch; `None`: the faces as they are.
    #[serde(default)]
    pub mix: Option<MixConfig>,
    /// Sharpness-aware minimisation: the radius rho of the neighbourhood whose worst point
    /// each step descends from; `None`: plain steps.
    #[serde(default)]
    pub sam: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            arch: ArchKind::Ferrite,
            epochs: 60,
            batch_size: 64,
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            weight_decay: 5e-4,
            momentum: 0.9,
            schedule: ScheduleKind::OneCycle,
            warmup_epochs: 1.0,
            patience: 5,
            label_smoothing: 0.1,
            class_weights: false,
            dropout: None,
            augment: AugmentConfig::default(),
            seed: 0,
            limit: None,
            device: "cpu".into(),
            freeze: 0,
            early_stop: None,
            from: None,
            teacher: Vec::new(),
            teacher_weight: 0.0,
            average_epochs: 0,
            mix: None,
            sam: None,
        }
    }
}
