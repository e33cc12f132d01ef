//! Data-layer throughput: FER2013 load time, and the training input pipeline's images/s on
//! one core. Run: `cargo bench -p ferrite-data` (reads `$FERRITE_DATA_DIR` or
//! `../shared/data`; without the data it measures on synthetic faces only).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ferrite_data::augment::{AugmentConfig, Normalization};
use ferrite_data::face::PIXELS;
use ferrite_data::loader::{Loader, LoaderConfig};
use ferrite_data::{Origin, Samples};

fn main() {
    let dir = std::env::var_os("FERRITE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // At run time: a shared target folder may reuse this binary from another checkout.
            let manifest = std::env::var_os("CARGO_MANIFEST_DIR");
            PathBuf::from(manifest.unwrap_or(env!("CARGO_MANIFEST_DIR").into()))
                .join("../../../shared/data")
        });
    let csv = dir.join("fer2013/fer2013.csv.gz");
    let samples = if csv.is_file() {
        let start = Instant::now();
        let ds = ferrite_data::fer2013::load_fer2013(&csv).expect("load FER2013");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "load fer2013.csv.gz: {} rows in {secs:.2} s ({:.0} rows/s)",
            ds.total(),
            ds.total() as f64 / secs
        );
        ds.split("Training").unwrap().samples.clone()
    } else {
        println!("{} not found: measuring on synthetic faces", csv.display());
        let mut s = Samples::default();
        for i in 0..10_000 {
            let plane: Vec<u8> = (0..PIXELS).map(|p| ((p * 7 + i) % 256) as u8).collect();
            s.push(&plane, (i % 7) as u32, Origin::Row(i));
        }
        s
    };
    let samples = Arc::new(samples);
    for (name, augment) in [
        ("no augmentation", None),
        ("default augmentation", Some(AugmentConfig::default())),
    ] {
        let cfg = LoaderConfig {
            batch_size: 64,
            shuffle: true,
            augment,
            normalization: Normalization::default(),
            seed: 1,
            epoch: 0,
            workers: 1,
            prefetch: 2,
            drop_last: false,
        };
        let start = Instant::now();
        let n: usize = Loader::new(samples.clone(), 7, cfg).map(|b| b.len).sum();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "loader, 1 worker, {name}: {n} images in {secs:.2} s = {:.0} img/s",
            n as f64 / secs
        );
    }
}
