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

/// The device named by `--device`: `cpu`, or in a build with `--features gpu`, `gpu` (the
/// best adapter wgpu finds, preferring high-power GPUs; `CUBECL_WGPU_DEFAULT_DEVICE`
/// overrides the choice, e.g. `=IntegratedGpu(0)` or `=Cpu` for a software Vulkan driver)
/// or `gpu:N` (the N-th discrete GPU).
pub fn parse(name: &str) -> Result<Device, String> {
    let lower = name.to_ascii_lowercase();
    if lower == "cpu" {
        return Ok(Device::flex());
    }
    if let Some(rest) = lower.strip_prefix("gpu") {
        let index = match rest.strip_prefix(':') {
            Some(n) => Some(
                n.parse()
                    .map_err(|_| format!("bad GPU index in `{name}`"))?,
            ),
            None if rest.is_empty() => None,
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
fn gpu(index: Option<usize>) -> Result<Device, String> {
    use burn::tensor::DeviceKind;
    Ok(Device::wgpu(match index {
        Some(i) => DeviceKind::DiscreteGpu(i),
        None => DeviceKind::DefaultDevice,
    }))
}

#[cfg(not(feature = "gpu"))]
fn gpu(_index: Option<usize>) -> Result<Device, String> {
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

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_are_parsed_or_refused_with_the_reason() {
        assert!(parse("cpu").is_ok());
        assert!(parse("CPU").is_ok());
        assert!(parse("gpu:x").unwrap_err().contains("bad GPU index"));
        assert!(parse("gpux").unwrap_err().contains("unknown device"));
        assert!(parse("tpu").unwrap_err().contains("expected cpu"));
        if !cfg!(feature = "gpu") {
            assert!(parse("gpu").unwrap_err().contains("--features gpu"));
            assert!(parse("gpu:1").unwrap_err().contains("--features gpu"));
        }
    }
}
