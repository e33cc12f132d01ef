//! The FER2013 CSV reader on arbitrary bytes: errors, never panics or runaway memory.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::as_file(data, "csv");
    if let Ok(table) = ferrite_data::fer2013::read_fer2013(&path, 10) {
        assert!(table.rows() > 0);
    }
    let _ = ferrite_data::fer2013::load_fer2013(&path);
});
