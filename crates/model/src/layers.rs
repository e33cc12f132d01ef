//! Building blocks shared by the networks, each able to describe itself in a layer table.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use ferrite_kernels::{conv2d, conv2d_affine, depthwise_conv2d, max_pool2x2, norm_train};

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

/// The padding of a conv, if symmetric (what our kernels take).
fn symmetric_padding(conv: &Conv2d) -> Option<[usize; 2]> {
    match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        PaddingConfig2d::Valid => Some([0, 0]),
        _ => None,
    }
}

/// The padding of a conv our im2col kernels can run (one group, dilation 1); `None` for
/// the others.
fn kernel_padding(conv: &Conv2d) -> Option<[usize; 2]> {
    symmetric_padding(conv).filter(|_| conv.groups == 1 && conv.dilation == [1, 1])
}

/// `conv.forward(x)` for a depthwise conv (one filter per channel), through our depthwise
/// kernel where it applies (stride 1, dilation 1, no bias: mini-Xception's).
pub fn depthwise_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [cout, per_group, _, _] = conv.weight.dims();
    let depthwise = conv.groups == cout && per_group == 1;
    match symmetric_padding(conv) {
        Some(padding)
            if depthwise
                && conv.stride == [1, 1]
                && conv.dilation == [1, 1]
                && conv.bias.is_none() =>
        {
            depthwise_conv2d(x, conv.weight.val(), padding)
        }
        _ => conv.forward(x),
    }
}

/// `conv.forward(x)`, through ferrite's own kernels where they apply.
pub fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(padding) = kernel_padding(conv) else {
        return conv.forward(x);
    };
    let y = conv2d(x, conv.weight.val(), conv.stride, padding);
    match &conv.bias {
        Some(bias) => {
            let [_, c, _, _] = y.dims();
            y + bias.val().reshape([1, c, 1, 1])
        }
        None => y,
    }
}

/// `conv.forward(x)` then ReLU when `relu_after`: one fused pass at inference.
pub fn conv_act_forward(conv: &Conv2d, x: Tensor<4>, relu_after: bool) -> Tensor<4> {
    match (kernel_padding(conv), &conv.bias) {
        (Some(padding), Some(bias)) if !x.device().is_autodiff() => conv2d_affine(
            x,
            conv.weight.val(),
            None,
            bias.val(),
            conv.stride,
            padding,
            relu_after,
        ),
        _ => {
            let y = conv_forward(conv, x);
            if relu_after { relu(y) } else { y }
        }
    }
}

/// conv → batch norm → ReLU (when `relu_after`). At inference batch norm is a fixed scale
/// and shift per channel, applied in the conv's output pass: the three layers run as one.
pub fn conv_bn_forward(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>, relu_after: bool) -> Tensor<4> {
    match kernel_padding(conv) {
        Some(padding) if !x.device().is_autodiff() => {
            let device = x.device();
            let scale =
                bn.gamma.val() / (bn.running_var.value().to_device(&device) + bn.epsilon).sqrt();
            let mean = bn.running_mean.value().to_device(&device);
            let shift = match &conv.bias {
                Some(b) => bn.beta.val() + (b.val() - mean) * scale.clone(),
                None => bn.beta.val() - mean * scale.clone(),
            };
            conv2d_affine(
                x,
                conv.weight.val(),
                Some(scale),
                shift,
                conv.stride,
                padding,
                relu_after,
            )
        }
        _ => norm_forward(bn, conv_forward(conv, x), relu_after),
    }
}

/// `pool.forward(x)`, through ferrite's kernel for the 2x2/2 pools of `ferrite` and `vgg13`.
pub fn pool_forward(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let unpadded = matches!(
        pool.padding,
        PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
    );
    if pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && unpadded
        && !pool.ceil_mode
    {
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
        conv_bn_forward(&self.conv, &self.bn, x, true)
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
        let y = conv_bn_forward(&self.conv, &self.bn, self.a.forward(x.clone()), false);
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
        let x = depthwise_forward(&self.depthwise, x);
        conv_bn_forward(&self.pointwise, &self.bn, x, false)
    }

    pub fn trace(&self, name: &str, t: &mut Trace) {
        t.conv(&format!("{name}.dw"), &self.depthwise);
        t.conv(&format!("{name}.pw"), &self.pointwise);
        t.norm(&format!("{name}.bn"), &self.bn);
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Param, RunningState};
    use burn::tensor::Distribution;

    use super::*;

    /// Folding batch norm into the conv at inference gives what the three layers give one by
    /// one, with and without a conv bias.
    #[test]
    fn folded_inference_equals_conv_then_batch_norm_then_relu() {
        let device = Device::flex();
        let rand = |shape: [usize; 1], lo: f64, hi: f64| {
            Tensor::<1>::random(shape, Distribution::Uniform(lo, hi), &device)
        };
        for with_bias in [false, true] {
            let mut block = ConvBnRelu::new(5, 7, &device);
            if with_bias {
                block.conv.bias = Some(Param::from_tensor(rand([7], -1.0, 1.0)));
            }
            block.bn.gamma = Param::from_tensor(rand([7], 0.5, 2.0));
            block.bn.beta = Param::from_tensor(rand([7], -1.0, 1.0));
            block.bn.running_mean = RunningState::new(rand([7], -0.5, 0.5));
            block.bn.running_var = RunningState::new(rand([7], 0.2, 3.0));
            let x = Tensor::<4>::random([3, 5, 9, 9], Distribution::Normal(0.0, 1.0), &device);
            for relu_after in [false, true] {
                let folded = conv_bn_forward(&block.conv, &block.bn, x.clone(), relu_after);
                let y = block.bn.forward(block.conv.forward(x.clone()));
                let reference = if relu_after { relu(y) } else { y };
                let diff = (folded - reference).abs().max().into_scalar::<f32>();
                assert!(
                    diff < 1e-4,
                    "bias {with_bias}, relu {relu_after}: off by {diff}"
                );
            }
        }
    }
}
