//! Helpers shared by the integration tests: the real data and the `ferrite` binary.

#![allow(dead_code)] // each test file uses its own subset

/// The benchmark photos, shared with the benches (the group photo is found there).
#[path = "../../../infer/benches/fixtures/mod.rs"]
mod fixtures;
pub mod server;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The shared data folder: `$FERRITE_DATA_DIR`, or `../shared/data` beside the workspace.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("FERRITE_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => manifest_dir().join("../../../shared/data"),
    }
}

/// This crate's folder in the checkout being tested. Read at run time (cargo test sets it):
/// a target folder shared between checkouts, as CI's is, can reuse a test binary built in
/// another checkout, whose compile-time `env!("CARGO_MANIFEST_DIR")` points there.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// A file of the shared data, or `None` (after saying so) when it is absent. With
/// `FERRITE_REQUIRE_DATA=1` (CI) a missing file fails the test instead of skipping it.
pub fn real_file(relative: &str) -> Option<PathBuf> {
    let path = data_dir().join(relative);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("FERRITE_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{} is missing and FERRITE_REQUIRE_DATA=1", path.display());
    }
    eprintln!(
        "SKIPPED: {} not found (set FERRITE_DATA_DIR to run this test)",
        path.display()
    );
    None
}

pub fn fer2013() -> Option<PathBuf> {
    real_file("fer2013/fer2013.csv.gz")
}

pub fn ferplus() -> Option<(PathBuf, PathBuf)> {
    Some((fer2013()?, real_file("ferplus/fer2013new.csv")?))
}

/// Runs the `ferrite` binary built for these tests.
pub fn ferrite(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(args)
        .output()
        .expect("run ferrite")
}

/// Runs `ferrite`, asserts success and returns its standard output.
pub fn ferrite_ok(args: &[&str]) -> String {
    let out = ferrite(args);
    assert!(
        out.status.success(),
        "ferrite {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The 1927 Solvay conference photo (29 faces) that ships in `photos/`.
pub fn group_photo() -> PathBuf {
    fixtures::group_photo()
}
