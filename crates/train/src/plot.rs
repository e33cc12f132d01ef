//! Pictures of results: training curves and confusion matrices, drawn with plotters into
//! an in-memory buffer and saved as PNG with an embedded font (DejaVu Sans), so that
//! nothing depends on the fonts of the machine.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::trainer::EpochMetrics;

const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans font is invalid"));
    });
}

/// Saves an RGB buffer drawn by plotters as PNG, atomically.
fn save_rgb(buffer: Vec<u8>, width: u32, height: u32, path: &Path) -> Result<(), String> {
    let img =
        image::RgbImage::from_raw(width, height, buffer).ok_or("plot buffer has the wrong size")?;
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| e.to_string())?;
    ferrite_data::atomic::write_atomic(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Loss and accuracy per epoch, training and validation, side by side.
pub fn curves(history: &[EpochMetrics], val_name: &str, path: &Path) -> Result<(), String> {
    register_font();
    let (w, h) = (1100u32, 420u32);
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let panels = root.split_evenly((1, 2));
        let epochs = history.len().max(2) as i32;
        let series = [
            (
                "loss",
                history
                    .iter()
                    .map(|m| (m.train_loss, m.val_loss))
                    .collect::<Vec<_>>(),
            ),
            (
                "accuracy",
                history
                    .iter()
                    .map(|m| (m.train_accuracy, m.val_accuracy))
                    .collect::<Vec<_>>(),
            ),
        ];
        for (panel, (name, values)) in panels.iter().zip(series) {
            let lo = values
                .iter()
                .flat_map(|&(a, b)| [a, b])
                .fold(f64::INFINITY, f64::min);
            let hi = values
                .iter()
                .flat_map(|&(a, b)| [a, b])
                .fold(f64::NEG_INFINITY, f64::max);
            let (lo, hi) = if lo.is_finite() && hi > lo {
                (lo, hi)
            } else {
                (0.0, 1.0)
            };
            let pad = (hi - lo) * 0.05;
            let mut chart = ChartBuilder::on(panel)
                .caption(name, (FONT, 20))
                .margin(12)
                .x_label_area_size(35)
                .y_label_area_size(55)
                .build_cartesian_2d(1i32..epochs, (lo - pad)..(hi + pad))
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .x_labels(history.len().clamp(2, 12))
                .light_line_style(WHITE)
                .label_style((FONT, 13))
                .draw()
                .map_err(err)?;
            for (label, color, pick) in [("train", BLUE, 0usize), (val_name, RED, 1)] {
                let points: Vec<(i32, f64)> = values
                    .iter()
                    .enumerate()
                    .map(|(i, &(a, b))| ((i + 1) as i32, if pick == 0 { a } else { b }))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(err)?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 2, color.filled())))
                    .map_err(err)?;
            }
            chart
                .configure_series_labels()
                .label_font((FONT, 13))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    save_rgb(buffer, w, h, path)
}

/// A confusion matrix as a picture: rows are true classes, columns predictions, each cell
/// shaded by the share of its row and labelled with its count.
pub fn confusion(
    counts: &[Vec<u64>],
    classes: &[String],
    title: &str,
    path: &Path,
) -> Result<(), String> {
    register_font();
    let n = classes.len();
    let cell = 70u32;
    let (left, top) = (110u32, 60u32);
    let (w, h) = (left + cell * n as u32 + 20, top + cell * n as u32 + 90);
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let text = |size: u32| TextStyle::from((FONT, size).into_font()).color(&BLACK);
        root.draw_text(title, &text(18), (10, 15)).map_err(err)?;
        for (t, row) in counts.iter().enumerate() {
            let total: u64 = row.iter().sum::<u64>().max(1);
            for (p, &count) in row.iter().enumerate() {
                let share = count as f64 / total as f64;
                let shade = (255.0 * (1.0 - 0.85 * share)) as u8;
                let (x, y) = (
                    (left + p as u32 * cell) as i32,
                    (top + t as u32 * cell) as i32,
                );
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32, y + cell as i32)],
                    RGBColor(shade, shade, 255).filled(),
                ))
                .map_err(err)?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32, y + cell as i32)],
                    BLACK.mix(0.2),
                ))
                .map_err(err)?;
                let color = if share > 0.5 { WHITE } else { BLACK };
                let label = format!("{count}");
                root.draw_text(
                    &label,
                    &TextStyle::from((FONT, 15).into_font()).color(&color),
                    (x + 8, y + cell as i32 / 2 - 8),
                )
                .map_err(err)?;
            }
            root.draw_text(
                &classes[t],
                &text(14),
                (8, (top + t as u32 * cell + cell / 2 - 7) as i32),
            )
            .map_err(err)?;
        }
        for (p, name) in classes.iter().enumerate() {
            let x = (left + p as u32 * cell + 4) as i32;
            root.draw_text(name, &text(13), (x, (top + cell * n as u32 + 8) as i32))
                .map_err(err)?;
        }
        root.draw_text(
            "rows: true class, columns: predicted class",
            &text(14),
            (10, (h - 30) as i32),
        )
        .map_err(err)?;
        root.present().map_err(err)?;
    }
    save_rgb(buffer, w, h, path)
}

/// One line of a learning curve: per training-set size (images per class), the mean test
/// accuracy and its standard deviation over repeats.
pub struct CurveLine {
    pub label: String,
    pub points: Vec<(f64, f64, f64)>,
}

/// Test accuracy against images per class (log scale), a line per method, with ± one
/// standard deviation as vertical bars.
pub fn learning_curve(lines: &[CurveLine], title: &str, path: &Path) -> Result<(), String> {
    register_font();
    let (w, h) = (800u32, 520u32);
    let all = || lines.iter().flat_map(|l| l.points.iter());
    let x_max = all().map(|p| p.0).fold(1.0, f64::max) * 1.3;
    let x_min = all().map(|p| p.0).fold(x_max, f64::min).max(1.0) / 1.3;
    let y_min = all().map(|p| p.1 - p.2).fold(1.0, f64::min).max(0.0);
    let y_max = all().map(|p| p.1 + p.2).fold(0.0, f64::max).min(1.0);
    let pad = ((y_max - y_min) * 0.08).max(0.01);
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (x_min..x_max).log_scale(),
                (y_min - pad).max(0.0)..(y_max + pad).min(1.0),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("training images per class")
            .y_desc("test accuracy")
            .light_line_style(WHITE)
            .label_style((FONT, 13))
            .x_label_formatter(&|x| {
                // A log axis ticks every 1-9 x 10^k; labels at 1, 2 and 5 only, so that
                // "90" and "100" do not run together.
                let lead = x / 10f64.powf(x.log10().floor());
                let shown = [1.0, 2.0, 5.0].iter().any(|d| (lead - d).abs() < 1e-6);
                if shown {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{:.0} %", y * 100.0))
            .draw()
            .map_err(err)?;
        let colors = [BLUE, RED, RGBColor(0, 150, 60), RGBColor(200, 120, 0)];
        for (line, &color) in lines.iter().zip(colors.iter().cycle()) {
            let means: Vec<(f64, f64)> = line.points.iter().map(|p| (p.0, p.1)).collect();
            chart
                .draw_series(LineSeries::new(means.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(line.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(means.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
            chart
                .draw_series(line.points.iter().map(|&(x, m, s)| {
                    PathElement::new(vec![(x, m - s), (x, m + s)], color.stroke_width(1))
                }))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    save_rgb(buffer, w, h, path)
}

/// One track of a video: (seconds, class probabilities) per sampled frame.
pub struct Track {
    pub id: u64,
    pub points: Vec<(f64, Vec<f32>)>,
}

/// Emotions over time (`ferrite video --plot`): one panel per track, seconds on x, one line
/// per class; at most `max_panels` tracks, the longest on screen.
pub fn timeline(
    tracks: &[Track],
    classes: &[String],
    span: (f64, f64),
    title: &str,
    path: &Path,
) -> Result<(), String> {
    const MAX_PANELS: usize = 6;
    register_font();
    let mut shown: Vec<&Track> = tracks.iter().filter(|t| !t.points.is_empty()).collect();
    shown.sort_by_key(|t| std::cmp::Reverse(t.points.len()));
    shown.truncate(MAX_PANELS);
    shown.sort_by_key(|t| t.id);
    let panels = shown.len().max(1) as u32;
    let (w, h) = (1100u32, 60 + 230 * panels);
    let colors = [
        RGBColor(120, 120, 120),
        RGBColor(230, 160, 0),
        RGBColor(0, 160, 220),
        RGBColor(40, 80, 200),
        RGBColor(210, 30, 40),
        RGBColor(60, 160, 60),
        RGBColor(150, 60, 180),
        RGBColor(120, 70, 30),
    ];
    let (t0, t1) = (span.0, span.1.max(span.0 + 1e-3));
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(title, (FONT, 20)).map_err(err)?;
        if shown.is_empty() {
            root.draw_text(
                "no faces",
                &(FONT, 18).into_text_style(&root),
                (w as i32 / 2 - 40, 80),
            )
            .map_err(err)?;
        }
        for (panel, track) in root.split_evenly((panels as usize, 1)).iter().zip(&shown) {
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("track {}", track.id), (FONT, 16))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(45)
                .right_y_label_area_size(110)
                .build_cartesian_2d(t0..t1, 0f64..1f64)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("seconds")
                .light_line_style(WHITE)
                .label_style((FONT, 12))
                .draw()
                .map_err(err)?;
            for (c, class) in classes.iter().enumerate() {
                let color = colors[c % colors.len()];
                // A gap of over a second (the face left the screen) breaks the line.
                let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
                for (t, p) in &track.points {
                    if runs
                        .last()
                        .unwrap()
                        .last()
                        .is_some_and(|&(last, _)| t - last > 1.0)
                    {
                        runs.push(Vec::new());
                    }
                    runs.last_mut().unwrap().push((*t, p[c] as f64));
                }
                for (k, run) in runs.into_iter().enumerate() {
                    let series = chart
                        .draw_series(LineSeries::new(run, color.stroke_width(2)))
                        .map_err(err)?;
                    if k == 0 {
                        series.label(class.as_str()).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                        });
                    }
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font((FONT, 12))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    save_rgb(buffer, w, h, path)
}
