//! The FER2013 reader on gzip input: the fuzz bytes compressed (so the decompressed text is
//! what varies), and every fourth input passed raw as a (likely corrupt) gzip stream.
#![no_main]

mod common;

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = if data.first().is_some_and(|b| b % 4 == 0) {
        let mut raw = vec![0x1f, 0x8b];
        raw.extend_from_slice(&data[1..]);
        raw
    } else {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    };
    let path = common::as_file(&bytes, "csv.gz");
    let _ = ferrite_data::fer2013::read_fer2013(&path, 10);
});
