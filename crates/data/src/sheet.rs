//! Contact sheets: one labelled row of sample faces per class, for people to look at.

use image::{GrayImage, Luma, imageops};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::augment::{AugmentConfig, Normalization, augment_into, sample_seed};
use crate::dataset::Split;
use crate::face::{PIXELS, SIDE, plane_to_image};

const SCALE: u32 = 2; // faces drawn at 96x96
const GAP: u32 = 4;
const GLYPH: u32 = 8; // font8x8 glyphs are 8x8
const TEXT_SCALE: u32 = 2;

/// Draws up to `per_class` faces of each class of `split` (a seeded random pick), one row
/// per class with its name and count on the left.
///
/// With `augment`, each face is shown as the training pipeline would feed it (one seeded
/// draw of the augmentation), so a person can check what the network sees.
pub fn contact_sheet(
    split: &Split,
    classes: &[String],
    per_class: usize,
    seed: u64,
    augment: Option<&AugmentConfig>,
) -> GrayImage {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let cell = SIDE as u32 * SCALE;
    let counts = split.samples.class_counts(classes.len());
    let labels: Vec<String> = classes
        .iter()
        .zip(&counts)
        .map(|(c, n)| format!("{c} ({n})"))
        .collect();
    let label_width =
        labels.iter().map(|l| l.len() as u32).max().unwrap_or(0) * GLYPH * TEXT_SCALE + 2 * GAP;
    let width = label_width + per_class as u32 * (cell + GAP) + GAP;
    let height = classes.len() as u32 * (cell + GAP) + GAP;
    let mut sheet = GrayImage::from_pixel(width, height, Luma([255]));

    for (c, label) in labels.iter().enumerate() {
        let top = GAP + c as u32 * (cell + GAP);
        draw_text(
            &mut sheet,
            label,
            GAP,
            top + cell / 2 - GLYPH * TEXT_SCALE / 2,
            TEXT_SCALE,
            Luma([0]),
        );
        let mut members: Vec<usize> = (0..split.samples.len())
            .filter(|&i| split.samples.label(i) as usize == c)
            .collect();
        members.shuffle(&mut rng);
        for (k, &i) in members.iter().take(per_class).enumerate() {
            let plane = match augment {
                Some(cfg) => {
                    augmented_plane(split.samples.image(i), cfg, sample_seed(seed, 0, i as u64))
                }
                None => split.samples.image(i).to_vec(),
            };
            let face = imageops::resize(
                &plane_to_image(&plane),
                cell,
                cell,
                imageops::FilterType::Nearest,
            );
            imageops::replace(
                &mut sheet,
                &face,
                (label_width + k as u32 * (cell + GAP)) as i64,
                top as i64,
            );
        }
    }
    sheet
}

/// One augmented draw of a face, back in 0-255 gray levels.
fn augmented_plane(plane: &[u8], cfg: &AugmentConfig, seed: u64) -> Vec<u8> {
    let norm = Normalization::default();
    let mut out = vec![0f32; PIXELS];
    augment_into(plane, cfg, &norm, seed, &mut out);
    out.iter()
        .map(|v| {
            ((v * norm.std + norm.mean) * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// Draws ASCII text in `color` with the built-in 8x8 bitmap font, `scale` pixels per dot.
pub fn draw_text<P: image::Pixel>(
    img: &mut image::ImageBuffer<P, Vec<P::Subpixel>>,
    text: &str,
    x: u32,
    y: u32,
    scale: u32,
    color: P,
) {
    for (n, ch) in text.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY
            .get(ch as usize)
            .copied()
            .unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let px = x + (n as u32 * GLYPH + col) * scale + dx;
                        let py = y + row as u32 * scale + dy;
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, color);
                        }
                    }
                }
            }
        }
    }
}
