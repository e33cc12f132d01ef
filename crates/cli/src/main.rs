//! The `ferrite` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod dataset_args;
mod model_args;
mod output;

/// ferrite: facial expression recognition on small (48x48) gray faces.
///
/// Train, evaluate and run a compact CNN on FER2013, FERPlus or your own folder of faces.
#[derive(Debug, Parser)]
#[command(name = "ferrite", version, propagate_version = true)]
#[command(
    after_help = "Examples:\n  ferrite data stats --fer2013 fer2013.csv.gz\n  ferrite data stats --fer2013 fer2013.csv.gz --ferplus fer2013new.csv --json\n  ferrite data check --images my_faces/"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Look at, validate and export datasets (FER2013, FERPlus, image folders).
    #[command(subcommand)]
    Data(cmd::data::DataCommand),
    Info(cmd::info::InfoArgs),
    Train(cmd::train::TrainArgs),
    Finetune(cmd::finetune::FinetuneArgs),
    Cv(cmd::cv::CvArgs),
    Curve(cmd::curve::CurveArgs),
    Eval(cmd::eval::EvalArgs),
    Predict(cmd::predict::PredictArgs),
    Robustness(cmd::robustness::RobustnessArgs),
    Serve(cmd::serve::ServeArgs),
    Video(cmd::video::VideoArgs),
    Bench(cmd::bench::BenchArgs),
}

/// Lets glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.
///
/// Every operation of a training step returns a fresh buffer (a batch of 64 16x48x48
/// activations is 9.4 MB). By default glibc serves such sizes with `mmap`, or trims them off
/// the heap when freed, by a threshold it moves as it goes, so how often a step faults its
/// activations in again (and the kernel zeroes them) varies from run to run: 147,000 to
/// 674,000 page faults and 0.8-2.5 s of system time in four runs of `ferrite bench --arch
/// ferrite --iters 30` on a Zen 4 (2026-12-02), against 34,000 and 0.5 s in each run with
/// these settings. Peak memory is unchanged; memory freed after the peak stays with the
/// process until it exits.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's tuning; called before any thread starts.
    unsafe {
        // Served from the heap up to 32 MiB (glibc's ceiling for this setting), which also
        // stops malloc from moving the threshold itself.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when whoever reads our output stops (`| head`),
    // instead of failing (and panicking in println!) on a broken pipe.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(c) => cmd::data::run(c),
        Command::Train(a) => cmd::train::run(a),
        Command::Finetune(a) => cmd::finetune::run(a),
        Command::Cv(a) => cmd::cv::run(a),
        Command::Curve(a) => cmd::curve::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Predict(a) => cmd::predict::run(a),
        Command::Robustness(a) => cmd::robustness::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Video(a) => cmd::video::run(a),
        Command::Bench(a) => cmd::bench::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
