//! Photos with each face boxed and labelled with its top emotion.

use ferrite_data::sheet::draw_text;
use image::{DynamicImage, Rgb, RgbImage};

use crate::detect::FaceBox;
use crate::predict::ImagePrediction;

/// One colour per class index, distinct on photos.
const PALETTE: [[u8; 3]; 8] = [
    [230, 25, 75],   // red
    [145, 30, 180],  // purple
    [245, 130, 48],  // orange
    [60, 180, 75],   // green
    [0, 130, 200],   // blue
    [255, 225, 25],  // yellow
    [170, 170, 170], // grey
    [240, 50, 230],  // magenta
];

/// `img` with a box around each detected face, its five landmarks as dots, and
/// "Class 87%" above it.
pub fn annotate(img: &DynamicImage, prediction: &ImagePrediction, classes: &[String]) -> RgbImage {
    let mut out = img.to_rgb8();
    for face in &prediction.faces {
        let Some(f) = &face.bbox else { continue };
        let label = format!(
            "{} {:.0}%",
            classes[face.top],
            face.probabilities[face.top] * 100.0
        );
        draw_face(&mut out, f, face.top, &label);
    }
    out
}

/// Draws one face on `out`: its box and landmarks in the colour of class `top`, and
/// `label` above the box (inside its top edge when there is no room above).
pub fn draw_face(out: &mut RgbImage, f: &FaceBox, top: usize, label: &str) {
    let (w, h) = out.dimensions();
    // Whole pixels, inside the image.
    let b = PixelBox {
        x: (f.x.round().max(0.0) as u32).min(w.saturating_sub(1)),
        y: (f.y.round().max(0.0) as u32).min(h.saturating_sub(1)),
        width: (f.width.round() as u32).max(1),
        height: (f.height.round() as u32).max(1),
    };
    let color = Rgb(PALETTE[top % PALETTE.len()]);
    let thick = (b.width / 60).clamp(2, 6);
    fill(out, b.x, b.y, b.width, thick, color);
    fill(
        out,
        b.x,
        (b.y + b.height).saturating_sub(thick),
        b.width,
        thick,
        color,
    );
    fill(out, b.x, b.y, thick, b.height, color);
    fill(
        out,
        (b.x + b.width).saturating_sub(thick),
        b.y,
        thick,
        b.height,
        color,
    );

    let scale = (b.width / 80).clamp(1, 4);
    let (tw, th) = (label.len() as u32 * 8 * scale + 4, 8 * scale + 4);
    let ty = if b.y >= th {
        b.y - th
    } else {
        (b.y + thick).min(h.saturating_sub(th))
    };
    let tx = b.x.min(w.saturating_sub(tw));
    fill(out, tx, ty, tw, th, color);
    draw_text(out, label, tx + 2, ty + 2, scale, Rgb([0, 0, 0]));

    // Landmarks: a dot in the class colour with a dark rim, visible on any skin.
    let r = (b.width / 50).clamp(1, 4);
    for [lx, ly] in f.landmarks {
        if lx < 0.0 || ly < 0.0 || lx >= w as f32 || ly >= h as f32 {
            continue;
        }
        let (cx, cy) = (lx as u32, ly as u32);
        let rim = r + 1;
        fill(
            out,
            cx.saturating_sub(rim),
            cy.saturating_sub(rim),
            2 * rim + 1,
            2 * rim + 1,
            Rgb([0, 0, 0]),
        );
        fill(
            out,
            cx.saturating_sub(r),
            cy.saturating_sub(r),
            2 * r + 1,
            2 * r + 1,
            color,
        );
    }
}

struct PixelBox {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

/// Fills a rectangle, clipped to the image.
fn fill(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, color: Rgb<u8>) {
    let (iw, ih) = img.dimensions();
    for py in y..(y + h).min(ih) {
        for px in x..(x + w).min(iw) {
            img.put_pixel(px, py, color);
        }
    }
}
