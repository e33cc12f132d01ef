//! `ferrite info`: a network's layer table, or what a model file holds.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use ferrite_model::{ArchConfig, ArchKind};

use crate::output::{align_numbers, table};

/// Show a network's layer table, or what a model file holds.
///
/// Prints the layers with output shapes, parameters and multiply-adds per image,
/// or (with --model) a model file's metadata and layers.
///
/// Example: ferrite info --arch ferrite
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Network to describe.
    #[arg(long, value_parser = crate::cmd::train::parse_arch, required_unless_present = "model", conflicts_with = "model")]
    arch: Option<ArchKind>,
    /// Number of classes of the output layer.
    #[arg(long, default_value_t = 7)]
    classes: usize,
    /// Describe this model file instead.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InfoArgs) -> Result<i32> {
    let device = ferrite_model::device::parse("cpu").map_err(anyhow::Error::msg)?;
    let (net, meta) = match &args.model {
        Some(path) => {
            let (net, meta) = ferrite_model::file::load(path, &device)?;
            (net, Some(meta))
        }
        None => (
            ArchConfig::new(args.arch.expect("clap requires --arch"), args.classes).init(&device),
            None,
        ),
    };
    let trace = net.trace();
    if args.json {
        let out = serde_json::json!({
            "model": meta,
            "layers": trace.layers,
            "params": trace.total_params(),
            "macs": trace.total_macs(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    if let Some(m) = &meta {
        println!(
            "model: {} trained on {} for {} epochs",
            m.arch.arch, m.dataset, m.epochs
        );
        if m.averaged_epochs > 0 {
            println!(
                "weights: the mean of those of its last {} epochs",
                m.averaged_epochs
            );
        }
        if let (Some(split), Some(acc)) = (&m.val_split, m.val_accuracy) {
            println!("selected on {split}: accuracy {:.2} %", acc * 100.0);
        }
        println!("classes: {}", m.classes.join(", "));
        println!(
            "input: {}x{}x{}, normalised (x/255 - {}) / {}",
            m.input_channels, m.input_side, m.input_side, m.normalization.mean, m.normalization.std
        );
        println!("written by {}\n", m.created_by);
    }
    let mut t = table(vec![
        "layer".into(),
        "kind".into(),
        "output".into(),
        "params".into(),
        "MACs".into(),
    ]);
    for l in &trace.layers {
        let shape = l
            .output
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x");
        let params = if l.params > 0 {
            l.params.to_string()
        } else {
            String::new()
        };
        let macs = if l.macs > 0 {
            l.macs.to_string()
        } else {
            String::new()
        };
        t.add_row(vec![l.name.clone(), l.kind.clone(), shape, params, macs]);
    }
    t.add_row(vec![
        "total".into(),
        String::new(),
        String::new(),
        trace.total_params().to_string(),
        trace.total_macs().to_string(),
    ]);
    align_numbers(&mut t);
    println!("{t}");
    println!(
        "{} parameters, {:.1} M multiply-adds per image",
        trace.total_params(),
        trace.total_macs() as f64 / 1e6
    );
    Ok(0)
}
