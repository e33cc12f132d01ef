//! 2x2 max pooling with stride 2 (floor mode) on contiguous NCHW f32 data.
//!
//! Why our own: burn's flex backend computes pooling through a general windowed kernel that
//! also writes an index tensor for the backward; on our network it cost about a tenth of a
//! training step. The backward here recomputes each window's maximum from the input instead
//! of storing indices, in one pass.

use rayon::prelude::*;

/// Sizes: `planes` (batch × channels) planes of `h x w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
}

impl PoolShape {
    pub fn out_h(&self) -> usize {
        self.h / 2
    }

    pub fn out_w(&self) -> usize {
        self.w / 2
    }
}

/// The index (0..4: top-left, top-right, bottom-left, bottom-right) of the window's maximum;
/// the first one on ties, NaN counting as the largest.
#[inline]
fn argmax(a: f32, b: f32, c: f32, d: f32) -> usize {
    let mut best = 0;
    let mut v = a;
    for (i, x) in [b, c, d].into_iter().enumerate() {
        if x > v || (x.is_nan() && !v.is_nan()) {
            best = i + 1;
            v = x;
        }
    }
    best
}

/// The 2x2/2 max pool of `x`: `[planes, h/2, w/2]`.
pub fn forward(s: &PoolShape, x: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), s.planes * s.h * s.w, "max pool: input size");
    let (oh, ow) = (s.out_h(), s.out_w());
    let mut out = vec![0.0f32; s.planes * oh * ow];
    if oh * ow == 0 {
        return out;
    }
    out.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(s.h * s.w))
        .for_each(|(out, x)| {
            for oy in 0..oh {
                let (r0, r1) = (&x[2 * oy * s.w..][..s.w], &x[(2 * oy + 1) * s.w..][..s.w]);
                for (ox, o) in out[oy * ow..(oy + 1) * ow].iter_mut().enumerate() {
                    let (a, b, c, d) = (r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]);
                    *o = [a, b, c, d][argmax(a, b, c, d)];
                }
            }
        });
    out
}

/// The gradient of [`forward`]: each output gradient goes to its window's maximum.
pub fn backward(s: &PoolShape, x: &[f32], g: &[f32]) -> Vec<f32> {
    assert_eq!(
        x.len(),
        s.planes * s.h * s.w,
        "max pool backward: input size"
    );
    let (oh, ow) = (s.out_h(), s.out_w());
    assert_eq!(
        g.len(),
        s.planes * oh * ow,
        "max pool backward: gradient size"
    );
    let mut dx = vec![0.0f32; x.len()];
    if oh * ow == 0 {
        return dx;
    }
    dx.par_chunks_mut(s.h * s.w)
        .zip(x.par_chunks(s.h * s.w).zip(g.par_chunks(oh * ow)))
        .for_each(|(dx, (x, g))| {
            for oy in 0..oh {
                let (top, bottom) = (2 * oy * s.w, (2 * oy + 1) * s.w);
                for ox in 0..ow {
                    let (i, j) = (top + 2 * ox, bottom + 2 * ox);
                    let k = argmax(x[i], x[i + 1], x[j], x[j + 1]);
                    dx[[i, i + 1, j, j + 1][k]] = g[oy * ow + ox];
                }
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_sides_drop_the_last_row_and_column() {
        let s = PoolShape {
            planes: 1,
            h: 3,
            w: 5,
        };
        #[rustfmt::skip]
        let x = [
            1.0, 5.0, 2.0, 2.0, 9.0,
            3.0, 4.0, 7.0, 1.0, 9.0,
            9.0, 9.0, 9.0, 9.0, 9.0,
        ];
        assert_eq!(forward(&s, &x), vec![5.0, 7.0]);
        let dx = backward(&s, &x, &[10.0, 20.0]);
        #[rustfmt::skip]
        assert_eq!(dx, vec![
            0.0, 10.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 20.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0,
        ]);
    }

    #[test]
    fn ties_send_the_gradient_to_the_first_maximum_only() {
        let s = PoolShape {
            planes: 2,
            h: 2,
            w: 2,
        };
        let x = [0.0, 0.0, 0.0, 0.0, -1.0, 3.0, 3.0, -2.0];
        assert_eq!(forward(&s, &x), vec![0.0, 3.0]);
        assert_eq!(
            backward(&s, &x, &[1.0, 2.0]),
            vec![1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0]
        );
    }
}
