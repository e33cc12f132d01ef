//! From YuNet's raw head outputs to faces: one prior per cell, anchor-free (the weights'
//! README and OpenCV's FaceDetectorYN decode the same way), a score threshold, and greedy
//! non-maximum suppression.

use super::yunet::{HEAD, Level};

/// A face in detector-input pixels (continuous coordinates: a pixel's centre is at +0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Left, top, width, height.
    pub rect: [f32; 4],
    /// sqrt(sigmoid(cls) * sigmoid(obj)), in 0..1.
    pub score: f32,
    /// [`LANDMARKS`](super::LANDMARKS): the person's right eye (on the image's left), left
    /// eye, nose tip, right and left mouth corner, as YuNet orders them.
    pub landmarks: [[f32; 2]; 5],
}

impl Detection {
    /// Scaled by (`fx`, `fy`), then moved by (`dx`, `dy`).
    pub fn scaled(&self, fx: f32, fy: f32, dx: f32, dy: f32) -> Detection {
        let [x, y, w, h] = self.rect;
        Detection {
            rect: [x * fx + dx, y * fy + dy, w * fx, h * fy],
            score: self.score,
            landmarks: self.landmarks.map(|[lx, ly]| [lx * fx + dx, ly * fy + dy]),
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Every cell of every level scoring at least `min_score`.
pub fn candidates(levels: &[Level], min_score: f32) -> Vec<Detection> {
    let mut out = Vec::new();
    for level in levels {
        assert_eq!(
            level.data.len(),
            level.rows * level.cols * HEAD,
            "a level has a cell per row and column"
        );
        let s = level.stride as f32;
        for (i, cell) in level.data.chunks_exact(HEAD).enumerate() {
            let score = (sigmoid(cell[0]) * sigmoid(cell[1])).sqrt();
            if score < min_score {
                continue;
            }
            let (row, col) = ((i / level.cols) as f32, (i % level.cols) as f32);
            let (cx, cy) = ((col + cell[2]) * s, (row + cell[3]) * s);
            let (w, h) = (cell[4].exp() * s, cell[5].exp() * s);
            let mut landmarks = [[0.0; 2]; 5];
            for (k, l) in landmarks.iter_mut().enumerate() {
                *l = [(col + cell[6 + 2 * k]) * s, (row + cell[7 + 2 * k]) * s];
            }
            out.push(Detection {
                rect: [cx - w / 2.0, cy - h / 2.0, w, h],
                score,
                landmarks,
            });
        }
    }
    out
}

/// Intersection over union of two `[left, top, width, height]` rectangles.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let iy = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Greedy NMS: best score first, dropping any face overlapping a kept one by more than
/// `max_iou`; at most `keep` faces. Only the best `candidates_cap` candidates take part,
/// which bounds the quadratic cost on pathological images.
pub fn nms(
    mut dets: Vec<Detection>,
    max_iou: f32,
    keep: usize,
    candidates_cap: usize,
) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    dets.truncate(candidates_cap);
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept.len() == keep {
            break;
        }
        if kept.iter().all(|k| iou(&k.rect, &d.rect) <= max_iou) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level_with(
        stride: usize,
        rows: usize,
        cols: usize,
        cell: usize,
        values: [f32; HEAD],
    ) -> Level {
        let mut data = vec![-20.0; rows * cols * HEAD]; // sigmoid(-20): no face
        data[cell * HEAD..][..HEAD].copy_from_slice(&values);
        Level {
            stride,
            rows,
            cols,
            data,
        }
    }

    #[test]
    fn a_cell_decodes_to_its_box_and_landmarks_in_input_pixels() {
        // Row 1, column 2 of a stride-8 level; offsets of half a cell; size e^1 cells.
        let mut v = [0.0; HEAD];
        v[0] = 4.0;
        v[1] = 4.0;
        v[2] = 0.5;
        v[3] = 0.5;
        v[4] = 1.0;
        v[5] = 0.0;
        for k in 0..5 {
            v[6 + 2 * k] = k as f32 * 0.1;
            v[7 + 2 * k] = -0.2;
        }
        let faces = candidates(&[level_with(8, 3, 4, 6, v)], 0.5);
        assert_eq!(faces.len(), 1);
        let f = faces[0];
        let w = 1f32.exp() * 8.0;
        assert!((f.rect[0] - (20.0 - w / 2.0)).abs() < 1e-4);
        assert!((f.rect[1] - (12.0 - 4.0)).abs() < 1e-4);
        assert!((f.rect[2] - w).abs() < 1e-4 && (f.rect[3] - 8.0).abs() < 1e-4);
        assert!((f.score - 1.0 / (1.0 + (-4f32).exp())).abs() < 1e-6);
        assert!((f.landmarks[3][0] - (2.3 * 8.0)).abs() < 1e-4);
        assert!((f.landmarks[3][1] - (0.8 * 8.0)).abs() < 1e-4);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_faces_and_all_separate_ones() {
        let d = |x: f32, score: f32| Detection {
            rect: [x, 0.0, 10.0, 10.0],
            score,
            landmarks: [[0.0; 2]; 5],
        };
        let kept = nms(
            vec![d(0.0, 0.7), d(1.0, 0.9), d(30.0, 0.6), d(2.0, 0.8)],
            0.3,
            10,
            100,
        );
        assert_eq!(
            kept.iter().map(|k| k.rect[0]).collect::<Vec<_>>(),
            vec![1.0, 30.0]
        );
        assert_eq!(
            nms(vec![d(0.0, 0.7), d(30.0, 0.6), d(60.0, 0.5)], 0.3, 2, 100).len(),
            2
        );
        assert!((iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 10.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
    }
}
