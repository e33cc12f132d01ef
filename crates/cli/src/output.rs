//! Writing results for the user.

use std::path::Path;

use anyhow::{Context, Result};
use comfy_table::{CellAlignment, LineStyle, Table, TableStyle};

/// Saves a PNG atomically, with an error that names the file.
pub fn save_png(img: &image::GrayImage, path: &Path) -> Result<()> {
    ferrite_data::atomic::save_png_atomic(img, path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Plain columns with one rule under the header: easy to read and to copy.
const STYLE: TableStyle =
    TableStyle::new().header_separator(LineStyle::none().fill('─').junction('─'));

/// A table in ferrite's one style, with its header row.
pub fn table(header: Vec<String>) -> Table {
    let mut t = Table::new();
    t.load_style(STYLE);
    t.set_header(header);
    t
}

/// Right-aligns every column after the first (names left, figures right).
pub fn align_numbers(table: &mut Table) {
    for column in table.column_iter_mut().skip(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
}

/// A confusion matrix as a table: a row per true class, a column per prediction.
pub fn confusion_table(classes: &[String], counts: &[Vec<u64>]) -> Table {
    let mut header = vec!["true \\ predicted".to_string()];
    header.extend(classes.iter().cloned());
    let mut m = table(header);
    for (c, row) in classes.iter().zip(counts) {
        let mut cells = vec![c.clone()];
        cells.extend(row.iter().map(|n| n.to_string()));
        m.add_row(cells);
    }
    align_numbers(&mut m);
    m
}
