//! The image path of folder datasets, `predict` and uploads: decode with a size limit, then
//! frame as a 48x48 face plane.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small limit keeps each run fast; the limit logic is the same at 40 megapixels.
    if let Ok(img) = ferrite_data::decode::decode_image(data, 1 << 20) {
        assert!(img.width() as u64 * img.height() as u64 <= 1 << 20);
        let plane = ferrite_data::face::to_face_plane(&img);
        assert_eq!(plane.len(), ferrite_data::face::PIXELS);
    }
});
