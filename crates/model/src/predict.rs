//! Running a network over a set of faces: class probabilities, with optional test-time
//! augmentation.

use crate::Network;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use ferrite_data::Samples;
use ferrite_data::augment::Normalization;
use ferrite_data::face::{PIXELS, SIDE};

/// Test-time augmentation: average the prediction over transformed copies of each face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tta {
    #[default]
    None,
    /// The face and its mirror image.
    Flip,
    /// The face, its mirror, and the face shifted by 2 pixels in each of 4 directions.
    Crops,
}

/// The planes to average over for one face.
fn views(plane: &[u8], tta: Tta) -> Vec<Vec<u8>> {
    let mut out = vec![plane.to_vec()];
    if tta == Tta::None {
        return out;
    }
    out.push(mirror(plane));
    if tta == Tta::Crops {
        for (dx, dy) in [(2i32, 0i32), (-2, 0), (0, 2), (0, -2)] {
            out.push(shift(plane, dx, dy));
        }
    }
    out
}

fn mirror(plane: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; PIXELS];
    for y in 0..SIDE {
        for x in 0..SIDE {
            out[y * SIDE + x] = plane[y * SIDE + SIDE - 1 - x];
        }
    }
    out
}

/// Moves the face by (dx, dy) pixels, filling with black as the pad-crop augmentation does.
fn shift(plane: &[u8], dx: i32, dy: i32) -> Vec<u8> {
    let mut out = vec![0u8; PIXELS];
    for y in 0..SIDE as i32 {
        for x in 0..SIDE as i32 {
            let (sx, sy) = (x - dx, y - dy);
            if (0..SIDE as i32).contains(&sx) && (0..SIDE as i32).contains(&sy) {
                out[(y * SIDE as i32 + x) as usize] = plane[(sy * SIDE as i32 + sx) as usize];
            }
        }
    }
    out
}

/// Class probabilities for raw face planes (row-major, one `Vec` per face).
pub fn predict_planes(
    net: &Network,
    planes: &[&[u8]],
    norm: &Normalization,
    tta: Tta,
    device: &Device,
) -> Vec<Vec<f32>> {
    if planes.is_empty() {
        return Vec::new();
    }
    let per_face: Vec<Vec<Vec<u8>>> = planes.iter().map(|p| views(p, tta)).collect();
    let n_views = per_face[0].len();
    let n = planes.len() * n_views;
    let mut input = vec![0f32; n * PIXELS];
    for (k, view) in per_face.iter().flatten().enumerate() {
        norm.apply(view, &mut input[k * PIXELS..(k + 1) * PIXELS]);
    }
    let x = Tensor::<4>::from_data(TensorData::new(input, [n, 1, SIDE, SIDE]), device);
    let probs = softmax(net.forward(x), 1);
    let classes = probs.dims()[1];
    let flat: Vec<f32> = probs
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 probabilities");
    flat.chunks(classes * n_views)
        .map(|face| {
            (0..classes)
                .map(|c| (0..n_views).map(|v| face[v * classes + c]).sum::<f32>() / n_views as f32)
                .collect()
        })
        .collect()
}

/// Class probabilities for every sample of a set, in order, `batch` faces at a time.
pub fn predict_samples(
    net: &Network,
    samples: &Samples,
    norm: &Normalization,
    tta: Tta,
    batch: usize,
    device: &Device,
    progress: impl FnMut(usize),
) -> Vec<Vec<f32>> {
    in_batches(samples, batch, progress, |planes| {
        predict_planes(net, planes, norm, tta, device)
    })
}

/// `predict` over every sample of a set, in order, `batch` faces at a time, telling
/// `progress` how many were done after each batch.
pub fn in_batches(
    samples: &Samples,
    batch: usize,
    mut progress: impl FnMut(usize),
    mut predict: impl FnMut(&[&[u8]]) -> Vec<Vec<f32>>,
) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(samples.len());
    let indices: Vec<usize> = (0..samples.len()).collect();
    for chunk in indices.chunks(batch.max(1)) {
        let planes: Vec<&[u8]> = chunk.iter().map(|&i| samples.image(i)).collect();
        out.extend(predict(&planes));
        progress(chunk.len());
    }
    out
}

/// Index of the largest probability.
pub fn argmax(probs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > probs[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_and_shift_move_pixels() {
        let plane: Vec<u8> = (0..PIXELS).map(|i| (i % SIDE) as u8).collect();
        let m = mirror(&plane);
        assert_eq!(m[0], (SIDE - 1) as u8);
        let s = shift(&plane, 2, 0);
        assert_eq!(&s[..3], &[0, 0, 0]);
        assert_eq!(s[2 + SIDE], 0);
        assert_eq!(s[5], 3);
    }
}
