//! The `ferrite` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod dataset_args;
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
    Serve(cmd::serve::ServeArgs),
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when whoever reads our output stops (`| head`),
    // instead of failing (and panicking in println!) on a broken pipe.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
        Command::Serve(a) => cmd::serve::run(a),
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
