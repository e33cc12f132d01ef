//! Choosing where tensors live: the CPU (burn's `flex` backend) or a GPU (burn's `wgpu`
//! backend: Vulkan on Linux, Metal on macOS, DX12 on Windows).
//!
//! Why wgpu and not burn's CUDA backend: in burn 0.22 the CUDA backend's build script
//! downloads an LLVM bundle from the internet, which a build must never need; wgpu builds
//! from registry crates alone.

use burn::tensor::Device;

/// Devices `--device` accepts in this build.
pub fn available() -> &'static [&'static str] {
    if cfg!(feature = "gpu") {
        &["cpu", "gpu"]
    } else {
        &["cpu"]
    }
}

/// The device named by `--device`: `cpu`, or `gpu` / `gpu:N` (the N-th discrete GPU) in a
/// build with `--features gpu`.
pub fn parse(name: &str) -> Result<Device, String> {
    let lower = name.to_ascii_lowercase();
    if lower == "cpu" {
        return Ok(Device::flex());
    }
    if let Some(rest) = lower.strip_prefix("gpu") {
        let index: usize = match rest.strip_prefix(':') {
            Some(n) => n
                .parse()
                .map_err(|_| format!("bad GPU index in `{name}`"))?,
            None if rest.is_empty() => 0,
            None => return Err(format!("unknown device `{name}`")),
        };
        return gpu(index);
    }
    Err(format!(
        "unknown device `{name}`: expected {}",
        available().join(" or ")
    ))
}

#[cfg(feature = "gpu")]
fn gpu(index: usize) -> Result<Device, String> {
    Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index)))
}

#[cfg(not(feature = "gpu"))]
fn gpu(_index: usize) -> Result<Device, String> {
    Err("this ferrite was built without GPU support: rebuild with `cargo build --release --features gpu`".into())
}

/// Sets the number of CPU threads tensor code and data preparation use (call once, early).
pub fn set_threads(threads: usize) -> Result<(), String> {
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| format!("cannot set {threads} threads: {e}"))
}
