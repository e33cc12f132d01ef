//! The FERPlus votes reader, and the label rules applied to what it reads.
#![no_main]

mod common;

use ferrite_data::ferplus::{LabelMode, read_votes, verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::as_file(data, "csv");
    if let Ok(table) = read_votes(&path, 10) {
        for row in table.rows.iter().flatten() {
            for mode in [LabelMode::Majority, LabelMode::Plurality, LabelMode::Distribution] {
                let _ = verdict(&row.votes, mode);
            }
        }
    }
});
