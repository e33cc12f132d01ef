//! Layer tables: output shape, parameters and multiply-adds per layer.
//!
//! Each network walks its own layers in forward order and reports them to a [`Trace`],
//! which follows the activation shape. Figures come from the real modules' weights and
//! settings, so the table cannot drift from the network it describes.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use serde::Serialize;

/// One row of a layer table.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    pub name: String,
    pub kind: String,
    /// Output shape without the batch dimension: [C, H, W] or [features].
    pub output: Vec<usize>,
    pub params: usize,
    /// Multiply-adds for one image.
    pub macs: u64,
}

/// Follows the activation shape through a network, one layer at a time.
#[derive(Debug, Clone)]
pub struct Trace {
    pub layers: Vec<LayerInfo>,
    shape: Vec<usize>,
}

impl Trace {
    /// Starts at an input of `channels` x `side` x `side`.
    pub fn new(channels: usize, side: usize) -> Self {
        Trace {
            layers: Vec::new(),
            shape: vec![channels, side, side],
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn total_params(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }

    pub fn total_macs(&self) -> u64 {
        self.layers.iter().map(|l| l.macs).sum()
    }

    fn push(&mut self, name: &str, kind: String, params: usize, macs: u64) {
        self.layers.push(LayerInfo {
            name: name.into(),
            kind,
            output: self.shape.clone(),
            params,
            macs,
        });
    }

    pub fn conv(&mut self, name: &str, conv: &Conv2d) {
        let [cout, cin_per_group, kh, kw] = conv.weight.dims();
        let (h, w) = (self.shape[1], self.shape[2]);
        let (top, left, bottom, right) = padding(&conv.padding, [kh, kw]);
        let oh = (h + top + bottom - conv.dilation[0] * (kh - 1) - 1) / conv.stride[0] + 1;
        let ow = (w + left + right - conv.dilation[1] * (kw - 1) - 1) / conv.stride[1] + 1;
        self.shape = vec![cout, oh, ow];
        let macs = (oh * ow * cout * cin_per_group * kh * kw) as u64;
        let groups = if conv.groups > 1 {
            format!(" groups {}", conv.groups)
        } else {
            String::new()
        };
        let kind = format!(
            "conv {kh}x{kw}/{} {}→{cout}{groups}",
            conv.stride[0],
            cin_per_group * conv.groups
        );
        self.push(name, kind, conv.num_params(), macs);
    }

    pub fn norm(&mut self, name: &str, bn: &BatchNorm) {
        let macs = self.shape.iter().product::<usize>() as u64;
        // Trainable parameters only (scale and shift), not the running statistics.
        let [channels] = bn.gamma.dims();
        self.push(name, "batch norm".into(), 2 * channels, macs);
    }

    pub fn pool(&mut self, name: &str, pool: &MaxPool2d) {
        let (h, w) = (self.shape[1], self.shape[2]);
        let (top, left, bottom, right) = padding(&pool.padding, pool.kernel_size);
        let oh = (h + top + bottom - pool.kernel_size[0]) / pool.stride[0] + 1;
        let ow = (w + left + right - pool.kernel_size[1]) / pool.stride[1] + 1;
        self.shape = vec![self.shape[0], oh, ow];
        self.push(
            name,
            format!(
                "max pool {}x{}/{}",
                pool.kernel_size[0], pool.kernel_size[1], pool.stride[0]
            ),
            0,
            0,
        );
    }

    pub fn global_avg_pool(&mut self, name: &str) {
        let macs = self.shape.iter().product::<usize>() as u64;
        self.shape = vec![self.shape[0]];
        self.push(name, "global average pool".into(), 0, macs);
    }

    pub fn flatten(&mut self, name: &str) {
        self.shape = vec![self.shape.iter().product()];
        self.push(name, "flatten".into(), 0, 0);
    }

    pub fn linear(&mut self, name: &str, linear: &Linear) {
        let [din, dout] = linear.weight.dims();
        self.shape = vec![dout];
        self.push(
            name,
            format!("linear {din}→{dout}"),
            linear.num_params(),
            (din * dout) as u64,
        );
    }

    /// A layer that keeps the shape and has no weights (dropout, add, ReLU).
    pub fn note(&mut self, name: &str, kind: &str) {
        self.push(name, kind.into(), 0, 0);
    }
}

/// (top, left, bottom, right) padding. `Same` is only used with odd kernels at stride 1.
fn padding(p: &PaddingConfig2d, kernel: [usize; 2]) -> (usize, usize, usize, usize) {
    match *p {
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
        PaddingConfig2d::Same => (
            (kernel[0] - 1) / 2,
            (kernel[1] - 1) / 2,
            kernel[0] / 2,
            kernel[1] / 2,
        ),
    }
}
