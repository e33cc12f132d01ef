//! `ferrite serve`: the JSON API and the web page.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use ferrite_serve::{AppState, ServeConfig};

/// Serve a JSON API and a web page (photo upload, live webcam) on this machine.
///
/// Routes: POST /v1/predict (an image as the body, or multipart field `image`; query
/// options min_face, min_score, detect_size, no_detect, no_align) answers with the same
/// JSON per image as `ferrite predict --json`; GET /v1/model, GET /healthz, GET /metrics
/// (Prometheus text), GET / (the page; everything is embedded, it works offline). Stops on
/// Ctrl-C or SIGTERM after the requests in flight finish.
///
/// Examples:
///   ferrite serve                                   # http://127.0.0.1:8080
///   curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8080/v1/predict
///   ferrite serve --addr 0.0.0.0:8080 --model models/ferplus.safetensors
// Verbatim: the example lines stay lines (clap would join them into one paragraph).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// Model file [default: the built-in model]; several, comma-separated, run as an
    /// ensemble (probabilities averaged; they must share their classes).
    #[arg(long, value_name = "FILE[,FILE...]", value_delimiter = ',')]
    model: Vec<PathBuf>,
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Largest request body, in MB (larger ones get 413).
    #[arg(long, value_name = "MB", default_value_t = 10.0)]
    max_body_mb: f64,
    /// Largest image decoded, in megapixels (larger ones get 422, before any allocation).
    #[arg(long, value_name = "MP", default_value_t = 40.0)]
    max_megapixels: f64,
    /// Predictions running or waiting at once; beyond that, 503 with Retry-After.
    #[arg(long, default_value_t = 16)]
    queue: usize,
    /// Megapixels of images being decoded and searched at once; a request that would go
    /// over gets 503 with Retry-After. Bounds memory (about 16 bytes per pixel: 64 MP is
    /// about 1 GB); at least --max-megapixels.
    #[arg(long, value_name = "MP", default_value_t = 64.0)]
    max_megapixels_in_flight: f64,
    /// Longest a request body may take to arrive (then 408) and a prediction may take (then
    /// 504), in seconds.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    timeout: f64,
    /// Longest a client may take to send a request's headers, or stay idle between requests,
    /// in seconds; then the connection is closed (defeats slow-header "slowloris" clients).
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    header_timeout: f64,
    /// Open connections at once; a new one beyond this is answered 503 and closed. Keep it
    /// below the process's file-descriptor limit (`ulimit -n`).
    #[arg(long, value_name = "N", default_value_t = 512)]
    max_connections: usize,
    /// cpu, or gpu[:N] in a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// CPU threads for the network [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: ServeArgs) -> Result<i32> {
    if let Some(t) = args.threads {
        ferrite_model::device::set_threads(t).map_err(anyhow::Error::msg)?;
    }
    let config = ServeConfig {
        max_body_bytes: (positive("--max-body-mb", args.max_body_mb)? * 1024.0 * 1024.0) as usize,
        max_pixels: (positive("--max-megapixels", args.max_megapixels)? * 1e6) as u64,
        queue: positive("--queue", args.queue as f64)? as usize,
        max_pixels_in_flight: (positive(
            "--max-megapixels-in-flight",
            args.max_megapixels_in_flight,
        )? * 1e6) as u64,
        timeout: Duration::from_secs_f64(positive("--timeout", args.timeout)?),
        header_timeout: Duration::from_secs_f64(positive("--header-timeout", args.header_timeout)?),
        max_connections: positive("--max-connections", args.max_connections as f64)? as usize,
    };
    if config.max_pixels_in_flight < config.max_pixels {
        anyhow::bail!(
            "--max-megapixels-in-flight ({}) must be at least --max-megapixels ({}), or the \
             largest images could never be served",
            args.max_megapixels_in_flight,
            args.max_megapixels
        );
    }
    let predictor = crate::cmd::predict::load_predictor(&args.model, &args.device)?;
    let state = Arc::new(AppState::new(predictor, config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let addr = listener.local_addr()?;
        println!("ferrite serving on http://{addr}/ (Ctrl-C to stop)");
        use std::io::Write;
        std::io::stdout().flush().ok();
        ferrite_serve::serve(listener, state, ferrite_serve::shutdown_signal())
            .await
            .context("server failed")?;
        eprintln!("stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}

/// `value` if it is a positive, finite number; "inf" parses as a float but is not a limit.
fn positive(flag: &str, value: f64) -> Result<f64> {
    if value > 0.0 && value < 1e9 {
        Ok(value)
    } else {
        anyhow::bail!("{flag} must be a positive number below 1e9, got {value}")
    }
}
