//! Which vector instructions the hand-written kernels ([`crate::direct`], [`crate::winograd`])
//! and the loops compiled per level ([`crate::compiled_for_level`]: batch norm, Winograd's
//! transforms) use on this CPU: AVX-512F where it exists, else AVX2 with FMA (every x86-64
//! CPU since about 2015), else none (the convolutions then run as im2col + multiply).
//!
//! `FERRITE_SIMD=avx2` or `FERRITE_SIMD=none` caps the choice, to measure or test the
//! narrower kernels on a wider CPU; it cannot enable what the CPU lacks.

use std::sync::OnceLock;

/// A family of vector instructions the kernels are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Simd {
    /// 256-bit registers, 16 of them, with fused multiply-add.
    Avx2,
    /// 512-bit registers, 32 of them, with masks.
    Avx512,
}

/// The widest family this CPU has, under the `FERRITE_SIMD` cap; decided once per process.
pub(crate) fn level() -> Option<Simd> {
    static LEVEL: OnceLock<Option<Simd>> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let native = if std::arch::is_x86_feature_detected!("avx512f") {
            Some(Simd::Avx512)
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            Some(Simd::Avx2)
        } else {
            None
        };
        let cap = match std::env::var("FERRITE_SIMD").as_deref() {
            Err(_) | Ok("avx512") => Some(Simd::Avx512),
            Ok("avx2") => Some(Simd::Avx2),
            Ok("none") => None,
            Ok(other) => {
                eprintln!("FERRITE_SIMD={other:?} is not one of avx512, avx2, none; ignored");
                Some(Simd::Avx512)
            }
        };
        native.min(cap)
    })
}
