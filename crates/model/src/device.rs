//! Choosing where tensors live: the CPU (burn's `flex` backend) or a GPU.

use burn::tensor::Device;

/// Devices `--device` accepts in this build.
pub fn available() -> &'static [&'static str] {
    if cfg!(feature = "cuda") {
        &["cpu", "cuda"]
    } else {
        &["cpu"]
    }
}

/// The device named by `--device`: `cpu`, or `cuda` / `cuda:N` in a build with `--features cuda`.
pub fn parse(name: &str) -> Result<Device, String> {
    let lower = name.to_ascii_lowercase();
    if lower == "cpu" {
        return Ok(Device::flex());
    }
    if let Some(rest) = lower.strip_prefix("cuda") {
        let index: usize = match rest.strip_prefix(':') {
            Some(n) => n
                .parse()
                .map_err(|_| format!("bad CUDA device index in `{name}`"))?,
            None if rest.is_empty() => 0,
            None => return Err(format!("unknown device `{name}`")),
        };
        return cuda(index);
    }
    Err(format!(
        "unknown device `{name}`: expected {}",
        available().join(" or ")
    ))
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device, String> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<Device, String> {
    Err("this ferrite was built without GPU support: rebuild with `--features cuda`".into())
}

/// Sets the number of CPU threads tensor code and data preparation use (call once, early).
pub fn set_threads(threads: usize) -> Result<(), String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| format!("cannot set {threads} threads: {e}"))
}
