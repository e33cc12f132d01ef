//! The one in-memory image representation: a 48x48 8-bit gray face plane.

use image::{DynamicImage, GrayImage, imageops};

/// Side of every face image ferrite stores and feeds to its networks.
pub const SIDE: usize = 48;
/// Pixels in one face plane.
pub const PIXELS: usize = SIDE * SIDE;

/// Converts any decoded image (colour or gray, any size) to a 48x48 gray face plane.
///
/// A non-square image is centre-cropped to a square first, so faces keep their aspect
/// ratio. The resize is a triangle (bilinear) filter whose support grows with the
/// reduction factor, i.e. an antialiased area-style average, not nearest-neighbour.
pub fn to_face_plane(img: &DynamicImage) -> [u8; PIXELS] {
    let gray = img.to_luma8();
    let (w, h) = gray.dimensions();
    let side = w.min(h);
    let square = imageops::crop_imm(&gray, (w - side) / 2, (h - side) / 2, side, side).to_image();
    let small = if side as usize == SIDE {
        square
    } else {
        imageops::resize(
            &square,
            SIDE as u32,
            SIDE as u32,
            imageops::FilterType::Triangle,
        )
    };
    let mut plane = [0u8; PIXELS];
    plane.copy_from_slice(small.as_raw());
    plane
}

/// Wraps a face plane as an image, e.g. to save it as PNG.
pub fn plane_to_image(plane: &[u8]) -> GrayImage {
    GrayImage::from_raw(SIDE as u32, SIDE as u32, plane.to_vec())
        .expect("a face plane has exactly SIDE*SIDE pixels")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn colour_image_is_centre_cropped_and_averaged() {
        // 200x100 image: left quarter black, rest white. The centre square (50..150)
        // is all white, so the crop must be white everywhere.
        let img = RgbImage::from_fn(200, 100, |x, _| {
            if x < 50 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let plane = to_face_plane(&DynamicImage::ImageRgb8(img));
        assert!(plane.iter().all(|&p| p == 255));
    }

    #[test]
    fn fine_stripes_average_to_grey_not_alias() {
        // One-pixel stripes at 480 px: nearest-neighbour would give pure 0 or 255.
        let img = GrayImage::from_fn(480, 480, |x, _| {
            image::Luma([if x % 2 == 0 { 0 } else { 255 }])
        });
        let plane = to_face_plane(&DynamicImage::ImageLuma8(img));
        let centre = plane[24 * SIDE + 24];
        assert!(
            (100..=155).contains(&centre),
            "centre pixel {centre} is not an average"
        );
    }
}
