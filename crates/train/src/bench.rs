//! Speed of a network on a device: training and inference throughput, batch-1 latency.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use ferrite_data::face::{PIXELS, SIDE};
use ferrite_model::ArchConfig;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub arch: String,
    pub batch: usize,
    pub params: usize,
    pub macs_per_image: u64,
    pub train_images_per_second: f64,
    pub infer_images_per_second: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    /// Multiply-adds counted as 2 FLOPs; training counted as 3x the forward pass.
    pub train_gflops: f64,
    pub infer_gflops: f64,
    pub peak_rss_mib: Option<f64>,
    pub threads: usize,
    /// Whose operations ran: "ferrite" (our CPU kernels) or "burn" (`--burn-ops`, or a GPU).
    pub kernels: String,
}

/// Deterministic face-like input: smooth gradients plus texture, normalised.
fn input(n: usize) -> Vec<f32> {
    (0..n * PIXELS)
        .map(|i| (((i % SIDE) as f32 * 0.07).sin() + ((i / SIDE % SIDE) as f32 * 0.05).cos()) * 0.8)
        .collect()
}

/// Times `iters` training steps and inference batches after `warmup` untimed ones, and
/// `iters * 4` batch-1 forward passes.
pub fn bench(
    arch: &ArchConfig,
    batch: usize,
    warmup: usize,
    iters: usize,
    device: &Device,
) -> BenchResult {
    let net0 = arch.init(device);
    let trace = net0.trace();
    let macs = trace.total_macs();

    // Training: forward, backward, SGD step.
    let ad = device.clone().autodiff();
    let mut net = arch.init(&ad);
    let mut optim = SgdConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let x = Tensor::<4>::from_data(TensorData::new(input(batch), [batch, 1, SIDE, SIDE]), &ad);
    let y = Tensor::<1, Int>::from_data(
        TensorData::new(
            (0..batch as i64)
                .map(|i| i % arch.num_classes as i64)
                .collect::<Vec<_>>(),
            [batch],
        ),
        &ad,
    );
    let mut start = Instant::now();
    for i in 0..warmup + iters {
        if i == warmup {
            start = Instant::now();
        }
        let loss = loss_fn.forward(net.forward(x.clone()), y.clone());
        let _ = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(0.01, net, grads);
    }
    let train_ips = (iters * batch) as f64 / start.elapsed().as_secs_f64();

    // Inference at `batch`.
    let net = net.valid();
    let x = Tensor::<4>::from_data(
        TensorData::new(input(batch), [batch, 1, SIDE, SIDE]),
        device,
    );
    let mut start = Instant::now();
    for i in 0..warmup + iters {
        if i == warmup {
            start = Instant::now();
        }
        let _ = net.forward(x.clone()).into_data();
    }
    let infer_ips = (iters * batch) as f64 / start.elapsed().as_secs_f64();

    // Batch-1 latency.
    let x1 = Tensor::<4>::from_data(TensorData::new(input(1), [1, 1, SIDE, SIDE]), device);
    for _ in 0..warmup.max(3) {
        let _ = net.forward(x1.clone()).into_data();
    }
    let mut times: Vec<f64> = (0..iters * 4)
        .map(|_| {
            let t = Instant::now();
            let _ = net.forward(x1.clone()).into_data();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];

    BenchResult {
        arch: arch.arch.to_string(),
        batch,
        params: trace.total_params(),
        macs_per_image: macs,
        train_images_per_second: train_ips,
        infer_images_per_second: infer_ips,
        latency_ms_p50: pct(0.5),
        latency_ms_p95: pct(0.95),
        train_gflops: train_ips * macs as f64 * 2.0 * 3.0 / 1e9,
        infer_gflops: infer_ips * macs as f64 * 2.0 / 1e9,
        peak_rss_mib: peak_rss_mib(),
        threads: rayon::current_num_threads(),
        kernels: if ferrite_model::kernels::ours(device) {
            "ferrite"
        } else {
            "burn"
        }
        .into(),
    }
}

/// Peak resident memory of this process (Linux), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
