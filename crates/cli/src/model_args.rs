//! The model a scoring command (eval, robustness) scores, and where it computes.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use clap::Args;
use ferrite_model::Ensemble;

#[derive(Debug, Args)]
pub struct ScoredModel {
    /// Model file; several, comma-separated, are scored as an ensemble (their
    /// probabilities averaged; they must share their classes).
    #[arg(
        long,
        value_name = "FILE[,FILE...]",
        value_delimiter = ',',
        required = true
    )]
    pub model: Vec<PathBuf>,
    /// cpu, or gpu[:N] in a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl ScoredModel {
    /// The device, and the model (or ensemble) loaded on it.
    pub fn load(&self) -> Result<(Ensemble, Device)> {
        let device = ferrite_model::device::parse(&self.device).map_err(anyhow::Error::msg)?;
        Ok((Ensemble::load(&self.model, &device)?, device))
    }

    /// The model's name in outputs (files joined by " + ").
    pub fn name(&self) -> String {
        ferrite_model::ensemble::describe(&self.model)
    }
}
