//! `ferrite bench`: how fast a network trains and runs here.

use anyhow::Result;
use clap::Args;
use ferrite_model::{ArchConfig, ArchKind};

/// Measure how fast a network trains and runs here.
///
/// Training throughput (forward + backward + SGD step), inference
/// throughput and batch-1 latency on synthetic 48x48 input, with achieved GFLOP/s and peak
/// memory. Compare with `bench/pytorch_reference.py` on the same machine.
///
/// Example: ferrite bench --arch ferrite --batch 64 --json
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Network to measure.
    #[arg(long, default_value = "ferrite", value_parser = crate::cmd::train::parse_arch)]
    arch: ArchKind,
    /// Batch size for the training and inference figures.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed iterations (after 2 untimed warm-up ones).
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Output classes.
    #[arg(long, default_value_t = 7)]
    classes: usize,
    /// CPU threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// cpu, or gpu[:N] in a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Run burn's own CPU operations instead of ferrite's kernels (conv, batch norm + ReLU,
    /// max pool), to see what the kernels gain.
    #[arg(long)]
    burn_ops: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchArgs) -> Result<i32> {
    if let Some(t) = args.threads {
        ferrite_model::device::set_threads(t).map_err(anyhow::Error::msg)?;
    }
    if args.batch == 0 || args.iters == 0 {
        anyhow::bail!("--batch and --iters must be at least 1");
    }
    let device = ferrite_model::device::parse(&args.device).map_err(anyhow::Error::msg)?;
    ferrite_model::kernels::use_burn_ops(args.burn_ops);
    let r = ferrite_train::bench::bench(
        &ArchConfig::new(args.arch, args.classes),
        args.batch,
        2,
        args.iters,
        &device,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} ({} params, {:.1} M MACs/image), batch {}, {} threads, device {}, {} kernels",
            r.arch,
            r.params,
            r.macs_per_image as f64 / 1e6,
            r.batch,
            r.threads,
            args.device,
            r.kernels
        );
        println!(
            "  train      {:>8.1} img/s  ({:.1} GFLOP/s)",
            r.train_images_per_second, r.train_gflops
        );
        println!(
            "  inference  {:>8.1} img/s  ({:.1} GFLOP/s)",
            r.infer_images_per_second, r.infer_gflops
        );
        println!(
            "  batch-1    {:>8.2} ms p50, {:.2} ms p95",
            r.latency_ms_p50, r.latency_ms_p95
        );
        if let Some(m) = r.peak_rss_mib {
            println!("  peak RSS   {m:>8.0} MiB");
        }
    }
    Ok(0)
}
