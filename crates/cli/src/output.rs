//! Writing results for the user.

use std::path::Path;

use anyhow::{Context, Result};
use comfy_table::{CellAlignment, Table, presets::UTF8_HORIZONTAL_ONLY};

/// Saves a PNG atomically, with an error that names the file.
pub fn save_png(img: &image::GrayImage, path: &Path) -> Result<()> {
    ferrite_data::atomic::save_png_atomic(img, path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A table in ferrite's one style, with its header row.
pub fn table(header: Vec<String>) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_HORIZONTAL_ONLY);
    t.set_header(header);
    t
}

/// Right-aligns every column after the first (names left, figures right).
pub fn align_numbers(table: &mut Table) {
    for column in table.column_iter_mut().skip(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
}
