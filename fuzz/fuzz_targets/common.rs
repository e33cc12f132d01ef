//! Shared by the targets: the fuzz input as a file, since the CSV readers take paths (as
//! `ferrite` gets them from the command line).

use std::path::PathBuf;

/// Writes `data` to this process's scratch file and returns its path.
pub fn as_file(data: &[u8], ext: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ferrite-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&path, data).expect("write the scratch file");
    path
}
