//! Replays the fuzz corpus kept in the repository (fuzz/seeds: the seeds, and every input a
//! fuzzing run found troublesome, kept as a regression case) through the readers the fuzz
//! targets exercise: each must give a result or an error, never a panic.

use std::path::{Path, PathBuf};

fn seeds(target: &str) -> Vec<PathBuf> {
    // The checkout under test, read at run time: a shared target folder (CI's) may reuse
    // this binary from another checkout, where the compile-time value points.
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let dir = Path::new(&manifest).join("../../fuzz/seeds").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

#[test]
fn csv_seeds_read_or_fail_cleanly() {
    for path in seeds("fer2013_csv")
        .into_iter()
        .chain(seeds("fer2013_gzip"))
    {
        let _ = ferrite_data::fer2013::read_fer2013(&path, 10);
    }
    for path in seeds("ferplus_votes") {
        let _ = ferrite_data::ferplus::read_votes(&path, 10);
    }
    let valid = seeds("fer2013_csv")
        .into_iter()
        .find(|p| p.ends_with("valid.csv"))
        .unwrap();
    let table = ferrite_data::fer2013::read_fer2013(&valid, 10).unwrap();
    assert_eq!(table.labels, [3, 0]);
}

#[test]
fn image_seeds_decode_or_fail_cleanly() {
    let mut decoded = 0;
    for path in seeds("image_decode") {
        let bytes = std::fs::read(&path).unwrap();
        if let Ok(img) = ferrite_data::decode::decode_image(&bytes, 1 << 20) {
            ferrite_data::face::to_face_plane(&img);
            decoded += 1;
        }
    }
    assert!(decoded >= 4, "the seed images decode");
}
