//! Helpers shared by this crate's tests: where the checkout and the shared data are.

#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;

/// This crate's folder, read at run time when cargo sets it (a target folder shared between
/// checkouts can run a test binary built in another one).
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// `relative` under `$FERRITE_DATA_DIR` (default `../shared/data` beside the checkout), or
/// `None` after saying SKIPPED; a failure under `FERRITE_REQUIRE_DATA=1` (CI).
pub fn shared(relative: &str) -> Option<PathBuf> {
    let data = std::env::var_os("FERRITE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../../../shared/data"));
    let path = data.join(relative);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("FERRITE_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{} is missing and FERRITE_REQUIRE_DATA=1", path.display());
    }
    eprintln!(
        "SKIPPED: {} not found (set FERRITE_DATA_DIR)",
        path.display()
    );
    None
}
