//! Building blocks shared by the networks, each able to describe itself in a layer table.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use ferrite_kernels::{conv2d, max_pool2x2, norm_train};

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

/// `conv.forward(x)`, through ferrite's own kernels where they apply (one group, dilation 1,
/// symmetric padding); depthwise convs keep burn's kernel, which is already direct.
pub fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        PaddingConfig2d::Valid => Some([0, 0]),
        _ => None,
    };
    match padding {
        Some(padding) if conv.groups == 1 && conv.dilation == [1, 1] => {
            let y = conv2d(x, conv.weight.val(), conv.stride, padding);
            match &conv.bias {
                Some(bias) => {
                    let [_, c, _, _] = y.dims();
                    y + bias.val().reshape([1, c, 1, 1])
                }
                None => y,
            }
        }
        _ => conv.forward(x),
    }
}

/// `pool.forward(x)`, through ferrite's kernel for the 2x2/2 pools of `ferrite` and `vgg13`.
pub fn pool_forward(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let unpadded = matches!(pool.padding, PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0));
    if pool.kernel_size == [2, 2] && pool.stride == [2, 2] && pool.dilation == [1, 1] && unpadded && !pool.ceil_mode {
        max_pool2x2(x)
    } else {
        pool.forward(x)
    }
}

/// `bn.forward(x)`, then ReLU when `relu_after`. In training, batch norm and ReLU run as one
/// fused kernel, and the running statistics are updated exactly as burn's `BatchNorm` does.
pub fn norm_forward(bn: &BatchNorm, x: Tensor<4>, relu_after: bool) -> Tensor<4> {
    // burn's own rule for training mode: an autodiff device and a layer not frozen.
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        let y = bn.forward(x);
        return if relu_after { relu(y) } else { y };
    }
    let r = norm_train(x, bn.gamma.val(), bn.beta.val(), bn.epsilon, relu_after);
    let device = r.output.device();
    let m = bn.momentum;
    let mean = bn.running_mean.value_sync().to_device(&device);
    let var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean
        .update((mean.mul_scalar(1.0 - m) + r.mean.detach().mul_scalar(m)).detach());
    bn.running_var
        .update((var.mul_scalar(1.0 - m) + r.variance.detach().mul_scalar(m)).detach());
    r.output
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
        norm_forward(&self.bn, conv_forward(&self.conv, x), true)
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
        let y = norm_forward(&self.bn, conv_forward(&self.conv, self.a.forward(x.clone())), false);
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
        let y = conv_forward(&self.pointwise, self.depthwise.forward(x));
        norm_forward(&self.bn, y, false)
    }

    pub fn trace(&self, name: &str, t: &mut Trace) {
        t.conv(&format!("{name}.dw"), &self.depthwise);
        t.conv(&format!("{name}.pw"), &self.pointwise);
        t.norm(&format!("{name}.bn"), &self.bn);
    }
}
