//! The YuNet-n network (Wu, Peng & Yu, "YuNet: A Tiny Millisecond-level Face Detector",
//! 2023) on our channels-last kernels: its weights, the forward pass, and the raw head outputs
//! per stride. Decoding them into faces is [`super::decode`].
//!
//! The network, as its ONNX graph has it (checked by `tools/yunet/convert.py`, which wrote
//! the weights): a 3x3 stride-2 conv, then "units" of a 1x1 conv followed by a 3x3 depthwise
//! conv and ReLU (batch norm folded into both), 2x2 max pools down to stride 32; a neck that
//! adds each level's unit output, upsampled 2x, into the level below (32 -> 16 -> 8); and at
//! strides 8, 16 and 32 a shared unit, then four heads (cls 1, obj 1, bbox 4, landmarks 10),
//! each a 1x1 conv and a 3x3 depthwise conv without ReLU. Because a depthwise conv treats
//! each channel alone, the four heads of a level run here as one 1x1 conv to 16 channels and
//! one 16-channel depthwise conv: the same arithmetic in one pass.

use std::collections::HashMap;

use ferrite_kernels::nhwc::{
    Map, add_upsampled2x, conv3x3_s2_relu, depthwise3x3, max_pool2x2, pointwise,
};
use safetensors::SafeTensors;

/// The converted weights (see `assets/yunet/README.md`), embedded in the binary.
const WEIGHTS: &[u8] = include_bytes!("../../assets/yunet/yunet_n.safetensors");

/// The strides of the three output levels.
pub const STRIDES: [usize; 3] = [8, 16, 32];
/// Input sides must be multiples of this (the coarsest stride).
pub const ALIGN: usize = 32;
/// Channels of a level's fused head output: cls, obj, 4 box, 10 landmark values.
pub const HEAD: usize = 16;

/// A 1x1 conv then a 3x3 depthwise conv, ReLU after when `relu`.
struct Unit {
    pw_weight: Vec<f32>, // [cin][cout]
    pw_bias: Vec<f32>,
    dw_weight: Vec<f32>, // [ky][kx][cout]
    dw_bias: Vec<f32>,
    relu: bool,
}

impl Unit {
    fn forward(&self, x: &Map) -> Map {
        let y = pointwise(x, &self.pw_weight, &self.pw_bias);
        depthwise3x3(&y, &self.dw_weight, &self.dw_bias, self.relu)
    }
}

/// The whole network, weights laid out for the kernels.
pub struct YuNet {
    stem_weight: Vec<f32>, // [ky][kx][cin][cout]
    stem_bias: Vec<f32>,
    /// Backbone units by stage, with a max pool before stages 1, 3, 4 and 5.
    stages: Vec<Vec<Unit>>,
    /// Neck units for strides 8, 16, 32.
    lateral: Vec<Unit>,
    /// Per level (8, 16, 32): the shared unit and the fused heads.
    share: Vec<Unit>,
    heads: Vec<Unit>,
}

/// One level's raw outputs: `rows x cols` cells of [`HEAD`] values (cls and obj before the
/// sigmoid, box and landmark offsets in cells).
pub struct Level {
    pub stride: usize,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

/// Reads tensors by name from the weights file.
struct Weights {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Weights {
    fn parse(bytes: &[u8]) -> Result<Weights, String> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("detector weights: {e}"))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(format!("detector weights: {name} is not f32"));
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            tensors.insert(name, (view.shape().to_vec(), values));
        }
        Ok(Weights { tensors })
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<&[f32], String> {
        let (s, v) = self
            .tensors
            .get(name)
            .ok_or_else(|| format!("detector weights: no tensor {name}"))?;
        if s != shape {
            return Err(format!(
                "detector weights: {name} is {s:?}, expected {shape:?}"
            ));
        }
        Ok(v)
    }

    /// `P.conv1` (1x1, [cout, cin, 1, 1]) and `P.conv2` (depthwise, [cout, 1, 3, 3]).
    fn unit(&self, prefix: &str, cin: usize, cout: usize, relu: bool) -> Result<Unit, String> {
        Ok(Unit {
            pw_weight: transpose(
                self.get(&format!("{prefix}.conv1.weight"), &[cout, cin, 1, 1])?,
                cout,
                cin,
            ),
            pw_bias: self.get(&format!("{prefix}.conv1.bias"), &[cout])?.to_vec(),
            dw_weight: transpose(
                self.get(&format!("{prefix}.conv2.weight"), &[cout, 1, 3, 3])?,
                cout,
                9,
            ),
            dw_bias: self.get(&format!("{prefix}.conv2.bias"), &[cout])?.to_vec(),
            relu,
        })
    }

    /// The four heads of level `i` as one unit: cls, obj, bbox, kps stacked to 16 channels.
    fn heads(&self, i: usize) -> Result<Unit, String> {
        let parts: Vec<Unit> = [("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)]
            .iter()
            .map(|(name, c)| self.unit(&format!("bbox_head.multi_level_{name}.{i}"), 64, *c, false))
            .collect::<Result<_, _>>()?;
        let mut fused = Unit {
            pw_weight: vec![0.0; 64 * HEAD],
            pw_bias: Vec::with_capacity(HEAD),
            dw_weight: vec![0.0; 9 * HEAD],
            dw_bias: Vec::with_capacity(HEAD),
            relu: false,
        };
        let mut at = 0;
        for p in &parts {
            let c = p.pw_bias.len();
            for ci in 0..64 {
                fused.pw_weight[ci * HEAD + at..][..c].copy_from_slice(&p.pw_weight[ci * c..][..c]);
            }
            for k in 0..9 {
                fused.dw_weight[k * HEAD + at..][..c].copy_from_slice(&p.dw_weight[k * c..][..c]);
            }
            fused.pw_bias.extend_from_slice(&p.pw_bias);
            fused.dw_bias.extend_from_slice(&p.dw_bias);
            at += c;
        }
        Ok(fused)
    }
}

/// `[rows][cols]` -> `[cols][rows]`.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

impl YuNet {
    /// The embedded YuNet-n.
    pub fn embedded() -> YuNet {
        YuNet::from_bytes(WEIGHTS).expect("the embedded detector weights are valid")
    }

    fn from_bytes(bytes: &[u8]) -> Result<YuNet, String> {
        let w = Weights::parse(bytes)?;
        // Stem: [16, 3, 3, 3] (out, in, ky, kx) -> [ky][kx][in][out].
        let stem = w.get("backbone.model0.conv1.weight", &[16, 3, 3, 3])?;
        let mut stem_weight = vec![0.0; stem.len()];
        for co in 0..16 {
            for ci in 0..3 {
                for k in 0..9 {
                    stem_weight[(k * 3 + ci) * 16 + co] = stem[(co * 3 + ci) * 9 + k];
                }
            }
        }
        let unit = |p: &str, cin, cout| w.unit(p, cin, cout, true);
        let stages = vec![
            vec![unit("backbone.model0.conv2", 16, 16)?],
            vec![
                unit("backbone.model1.conv1", 16, 16)?,
                unit("backbone.model1.conv2", 16, 64)?,
            ],
            vec![
                unit("backbone.model2.conv1", 64, 64)?,
                unit("backbone.model2.conv2", 64, 64)?,
            ],
            vec![
                unit("backbone.model3.conv1", 64, 64)?,
                unit("backbone.model3.conv2", 64, 64)?,
            ],
            vec![
                unit("backbone.model4.conv1", 64, 64)?,
                unit("backbone.model4.conv2", 64, 64)?,
            ],
            vec![
                unit("backbone.model5.conv1", 64, 64)?,
                unit("backbone.model5.conv2", 64, 64)?,
            ],
        ];
        let per_level = |f: &dyn Fn(usize) -> Result<Unit, String>| {
            (0..3).map(f).collect::<Result<Vec<_>, _>>()
        };
        Ok(YuNet {
            stem_bias: w.get("backbone.model0.conv1.bias", &[16])?.to_vec(),
            stem_weight,
            stages,
            lateral: per_level(&|i| unit(&format!("neck.lateral_convs.{i}"), 64, 64))?,
            share: per_level(&|i| {
                unit(&format!("bbox_head.multi_level_share_convs.{i}.0"), 64, 64)
            })?,
            heads: per_level(&|i| w.heads(i))?,
        })
    }

    /// The raw outputs for `input`: a BGR 0-255 channels-last image whose sides are multiples
    /// of [`ALIGN`].
    pub fn forward(&self, input: &Map) -> [Level; 3] {
        assert!(
            input.c == 3
                && input.h.is_multiple_of(ALIGN)
                && input.w.is_multiple_of(ALIGN)
                && input.h > 0
                && input.w > 0,
            "detector input must be BGR with sides a multiple of {ALIGN}"
        );
        let run = |units: &[Unit], x: Map| units.iter().fold(x, |x, u| u.forward(&x));
        let x = conv3x3_s2_relu(input, &self.stem_weight, &self.stem_bias);
        let x = run(&self.stages[0], x);
        let x = run(&self.stages[1], max_pool2x2(&x));
        let x = run(&self.stages[2], x);
        let mut f8 = run(&self.stages[3], max_pool2x2(&x));
        let mut f16 = run(&self.stages[4], max_pool2x2(&f8));
        let f32_ = run(&self.stages[5], max_pool2x2(&f16));

        let n32 = self.lateral[2].forward(&f32_);
        add_upsampled2x(&mut f16, &n32);
        let n16 = self.lateral[1].forward(&f16);
        add_upsampled2x(&mut f8, &n16);
        let n8 = self.lateral[0].forward(&f8);

        let level = |i: usize, feat: &Map| {
            let out = self.heads[i].forward(&self.share[i].forward(feat));
            Level {
                stride: STRIDES[i],
                rows: out.h,
                cols: out.w,
                data: out.data,
            }
        };
        [level(0, &n8), level(1, &n16), level(2, &n32)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_weights_load_and_give_one_cell_per_stride_step() {
        let net = YuNet::embedded();
        let out = net.forward(&Map::zeros(64, 96, 3));
        for (level, s) in out.iter().zip(STRIDES) {
            assert_eq!((level.rows, level.cols), (64 / s, 96 / s));
            assert_eq!(level.data.len(), level.rows * level.cols * HEAD);
            assert!(level.data.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn weights_with_a_wrong_shape_are_refused_by_name() {
        let net = Weights::parse(WEIGHTS).unwrap();
        let err = net
            .get("backbone.model0.conv1.weight", &[16, 1, 3, 3])
            .err()
            .unwrap();
        assert!(
            err.contains("backbone.model0.conv1.weight") && err.contains("expected"),
            "{err}"
        );
    }
}
