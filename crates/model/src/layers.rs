//! Building blocks shared by the networks, each able to describe itself in a layer table.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::summary::Trace;

/// A 3x3 (or `k`x`k`) convolution without bias, as batch norm follows it.
pub fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: 2f64.sqrt(),
            fan_out_only: false,
        })
        .init(device)
}

/// Max pooling with a square window.
pub fn max_pool(k: usize, stride: usize, pad: usize) -> MaxPool2d {
    MaxPool2dConfig::new([k, k])
        .with_strides([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init()
}

/// conv → batch norm → ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBnRelu {
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        ConvBnRelu {
            conv: conv(cin, cout, 3, 1, 1, device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }

    pub fn trace(&self, name: &str, t: &mut Trace) {
        t.conv(name, &self.conv);
        t.norm(&format!("{name}.bn"), &self.bn);
    }
}

/// A basic residual block: x + BN(conv(ReLU(BN(conv(x))))), then ReLU (He et al. 2016).
#[derive(Module, Debug)]
pub struct Residual {
    pub a: ConvBnRelu,
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl Residual {
    pub fn new(channels: usize, device: &Device) -> Self {
        let bn = BatchNormConfig::new(channels).init(device);
        Residual {
            a: ConvBnRelu::new(channels, channels, device),
            conv: conv(channels, channels, 3, 1, 1, device),
            bn,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self
            .bn
            .forward(self.conv.forward(self.a.forward(x.clone())));
        relu(x + y)
    }

    pub fn trace(&self, name: &str, t: &mut Trace) {
        self.a.trace(&format!("{name}.a"), t);
        t.conv(&format!("{name}.b"), &self.conv);
        t.norm(&format!("{name}.b.bn"), &self.bn);
        t.note(&format!("{name}.add"), "residual add");
    }
}

/// Depthwise 3x3 convolution then pointwise 1x1, neither with bias (Keras SeparableConv2D
/// as mini-Xception uses it), followed by batch norm.
#[derive(Module, Debug)]
pub struct SeparableBn {
    pub depthwise: Conv2d,
    pub pointwise: Conv2d,
    pub bn: BatchNorm,
}

impl SeparableBn {
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        let depthwise = Conv2dConfig::new([cin, cin], [3, 3])
            .with_groups(cin)
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(device);
        SeparableBn {
            depthwise,
            pointwise: conv(cin, cout, 1, 1, 0, device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn
            .forward(self.pointwise.forward(self.depthwise.forward(x)))
    }

    pub fn trace(&self, name: &str, t: &mut Trace) {
        t.conv(&format!("{name}.dw"), &self.depthwise);
        t.conv(&format!("{name}.pw"), &self.pointwise);
        t.norm(&format!("{name}.bn"), &self.bn);
    }
}
