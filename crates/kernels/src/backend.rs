//! How the kernels plug into burn: a backend extension with an implementation for the flex
//! backend (the kernels themselves) and one for autodiff (the backward passes, recorded as
//! single graph nodes like burn's own conv and batch norm).

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, ExtensionType, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, TensorData};

use crate::conv::{self, ConvShape};
use crate::depthwise::{self, DepthwiseShape};
use crate::norm::{self, NormShape};
use crate::pool::{self, PoolShape};

/// Both gradients of a convolution (`x_grad` is empty-shaped when not asked for).
#[derive(ExtensionType)]
pub struct ConvGrads<B: Backend> {
    pub x_grad: FloatTensor<B>,
    pub weight_grad: FloatTensor<B>,
}

/// Batch norm's output with the batch statistics it used.
#[derive(ExtensionType)]
pub struct NormTrain<B: Backend> {
    pub output: FloatTensor<B>,
    pub mean: FloatTensor<B>,
    pub variance: FloatTensor<B>,
}

/// Batch norm's gradients.
#[derive(ExtensionType)]
pub struct NormGrads<B: Backend> {
    pub x_grad: FloatTensor<B>,
    pub gamma_grad: FloatTensor<B>,
    pub beta_grad: FloatTensor<B>,
}

#[backend_extension(Flex, Autodiff)]
pub trait KernelOps: Backend {
    /// 2-D convolution, one group, no bias, dilation 1; `x` is `[n, cin, h, w]`, `weight`
    /// `[cout, cin, kh, kw]`.
    fn ferrite_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self>;

    fn ferrite_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        need_x_grad: bool,
    ) -> ConvGrads<Self>;

    /// Depthwise 2-D convolution, stride 1, dilation 1, no bias: `x` is `[n, c, h, w]`,
    /// `weight` `[c, 1, kh, kw]`.
    fn ferrite_depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        padding: [usize; 2],
    ) -> FloatTensor<Self>;

    fn ferrite_depthwise_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        padding: [usize; 2],
        need_x_grad: bool,
    ) -> ConvGrads<Self>;

    /// Inference only: convolution, then `v · scale + shift` per output channel, then ReLU
    /// when `relu`, in one pass. An empty `scale` means 1.
    fn ferrite_conv2d_affine(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        relu: bool,
    ) -> FloatTensor<Self>;

    /// Batch norm with batch statistics over `[n, c, h, w]`, then ReLU when `relu`.
    fn ferrite_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> NormTrain<Self>;

    /// 2x2 max pooling with stride 2, no padding, floor mode.
    fn ferrite_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;

    fn ferrite_max_pool2x2_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    #[allow(clippy::too_many_arguments)]
    fn ferrite_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> NormGrads<Self>;
}

// ---------------------------------------------------------------------------------------------
// flex: the kernels

/// The values of an f32 flex tensor in row-major order (copied only if strided).
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    assert_eq!(
        t.dtype(),
        DType::F32,
        "ferrite's kernels take f32 tensors, not {:?}",
        t.dtype()
    );
    match t.as_slice::<f32>() {
        Some(v) => std::borrow::Cow::Borrowed(v),
        None => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().unwrap().to_vec()),
    }
}

fn tensor(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}

fn conv_shape(
    x: &FlexTensor,
    w: &FlexTensor,
    stride: [usize; 2],
    padding: [usize; 2],
) -> ConvShape {
    let [batch, cin, h, w_] = x.shape().dims::<4>();
    let [cout, wcin, kh, kw] = w.shape().dims::<4>();
    assert_eq!(
        cin, wcin,
        "conv2d: input has {cin} channels, weight expects {wcin}"
    );
    ConvShape {
        batch,
        cin,
        h,
        w: w_,
        cout,
        kh,
        kw,
        stride,
        padding,
    }
}

fn depthwise_shape(x: &FlexTensor, w: &FlexTensor, padding: [usize; 2]) -> DepthwiseShape {
    let [batch, channels, h, w_] = x.shape().dims::<4>();
    let [wc, one, kh, kw] = w.shape().dims::<4>();
    assert!(
        wc == channels && one == 1,
        "depthwise conv2d: input has {channels} channels, weight is [{wc}, {one}, ..]"
    );
    DepthwiseShape {
        batch,
        channels,
        h,
        w: w_,
        kh,
        kw,
        padding,
    }
}

fn norm_shape(x: &FlexTensor) -> NormShape {
    let dims = x.shape().dims::<4>();
    NormShape {
        batch: dims[0],
        channels: dims[1],
        spatial: dims[2] * dims[3],
    }
}

fn pool_shape(x: &FlexTensor) -> PoolShape {
    let [n, c, h, w] = x.shape().dims::<4>();
    PoolShape {
        planes: n * c,
        h,
        w,
    }
}

impl KernelOps for Flex {
    fn ferrite_max_pool2x2(x: FlexTensor) -> FlexTensor {
        let s = pool_shape(&x);
        let [n, c, _, _] = x.shape().dims::<4>();
        tensor(
            pool::forward(&s, &values(&x)),
            &[n, c, s.out_h(), s.out_w()],
        )
    }

    fn ferrite_max_pool2x2_backward(x: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let s = pool_shape(&x);
        tensor(
            pool::backward(&s, &values(&x), &values(&output_grad)),
            &x.shape().dims::<4>(),
        )
    }

    fn ferrite_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FlexTensor {
        let s = conv_shape(&x, &weight, stride, padding);
        let out = conv::forward(&s, &values(&x), &values(&weight));
        tensor(out, &[s.batch, s.cout, s.out_h(), s.out_w()])
    }

    fn ferrite_conv2d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 2],
        need_x_grad: bool,
    ) -> ConvGrads<Self> {
        let s = conv_shape(&x, &weight, stride, padding);
        let (dx, dw) = conv::backward(
            &s,
            &values(&x),
            &values(&weight),
            &values(&output_grad),
            need_x_grad,
        );
        let x_shape = if need_x_grad {
            vec![s.batch, s.cin, s.h, s.w]
        } else {
            vec![0]
        };
        ConvGrads {
            x_grad: tensor(dx, &x_shape),
            weight_grad: tensor(dw, &weight.shape().dims::<4>()),
        }
    }

    fn ferrite_depthwise_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        padding: [usize; 2],
    ) -> FlexTensor {
        // burn's own forward: a direct per-plane kernel already.
        let [channels, ..] = weight.shape().dims::<4>();
        let options = ConvOptions::new([1, 1], padding, [1, 1], channels);
        <Flex as ModuleOps<Flex>>::conv2d(x, weight, None, options)
    }

    fn ferrite_depthwise_conv2d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        padding: [usize; 2],
        need_x_grad: bool,
    ) -> ConvGrads<Self> {
        let s = depthwise_shape(&x, &weight, padding);
        let (x, w) = (values(&x), values(&weight));
        s.check(&x, &w);
        let weight_dims = weight.shape().dims::<4>();
        let weight_grad = depthwise::weight_grad(&s, &x, &values(&output_grad));
        let x_grad = if need_x_grad {
            let turned = tensor(depthwise::turned(&w, s.kh * s.kw), &weight_dims);
            Self::ferrite_depthwise_conv2d(output_grad, turned, s.transposed_padding())
        } else {
            tensor(Vec::new(), &[0])
        };
        ConvGrads {
            x_grad,
            weight_grad: tensor(weight_grad, &weight_dims),
        }
    }

    fn ferrite_conv2d_affine(
        x: FlexTensor,
        weight: FlexTensor,
        scale: FlexTensor,
        shift: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 2],
        relu: bool,
    ) -> FlexTensor {
        let s = conv_shape(&x, &weight, stride, padding);
        let (scale, shift) = (values(&scale), values(&shift));
        let epilogue = conv::Epilogue {
            scale: (!scale.is_empty()).then_some(&scale[..]),
            shift: Some(&shift),
            relu,
        };
        let out = conv::forward_with(&s, &values(&x), &values(&weight), &epilogue);
        tensor(out, &[s.batch, s.cout, s.out_h(), s.out_w()])
    }

    fn ferrite_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> NormTrain<Self> {
        let s = norm_shape(&x);
        let f = norm::forward(
            &s,
            &values(&x),
            &values(&gamma),
            &values(&beta),
            epsilon,
            relu,
        );
        NormTrain {
            output: tensor(f.output, &x.shape().dims::<4>()),
            mean: tensor(f.mean, &[s.channels]),
            variance: tensor(f.variance, &[s.channels]),
        }
    }

    fn ferrite_norm_train_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        output_grad: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> NormGrads<Self> {
        let s = norm_shape(&x);
        let b = norm::backward(
            &s,
            &values(&x),
            &values(&gamma),
            &values(&beta),
            &values(&mean),
            &values(&variance),
            epsilon,
            relu,
            &values(&output_grad),
        );
        NormGrads {
            x_grad: tensor(b.x, &x.shape().dims::<4>()),
            gamma_grad: tensor(b.gamma, &[s.channels]),
            beta_grad: tensor(b.beta, &[s.channels]),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// autodiff: one graph node per op, whose backward calls the inner backend's backward kernel

/// Which convolution a [`ConvBackward`] node differentiates.
#[derive(Debug, Clone, Copy)]
enum ConvKind {
    /// [`KernelOps::ferrite_conv2d`] with this stride.
    Full { stride: [usize; 2] },
    /// [`KernelOps::ferrite_depthwise_conv2d`].
    Depthwise,
}

impl ConvKind {
    fn forward<B: KernelOps>(
        self,
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        padding: [usize; 2],
    ) -> FloatTensor<B> {
        match self {
            ConvKind::Full { stride } => B::ferrite_conv2d(x, weight, stride, padding),
            ConvKind::Depthwise => B::ferrite_depthwise_conv2d(x, weight, padding),
        }
    }
}

#[derive(Debug)]
struct ConvBackward;

impl<B: KernelOps> Backward<B, 2> for ConvBackward {
    type State = (NodeId, NodeId, ConvKind, [usize; 2]);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, kind, padding) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        let need_x = node_x.is_some();
        let g = match kind {
            ConvKind::Full { stride } => {
                B::ferrite_conv2d_backward(x, weight, grad, stride, padding, need_x)
            }
            ConvKind::Depthwise => {
                B::ferrite_depthwise_conv2d_backward(x, weight, grad, padding, need_x)
            }
        };
        if let Some(node) = node_x {
            grads.register::<B>(node.id, g.x_grad);
        }
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, g.weight_grad);
        }
    }
}

/// A convolution as one autodiff node, whose backward runs the inner backend's kernel.
fn tracked_conv<B: KernelOps, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    kind: ConvKind,
    padding: [usize; 2],
) -> FloatTensor<Autodiff<B, C>> {
    match ConvBackward
        .prepare::<C>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            let out = kind.forward::<B>(x.into_primitive(), weight.into_primitive(), padding);
            prep.finish((x_state, weight_state, kind, padding), out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(kind.forward::<B>(x.into_primitive(), weight.into_primitive(), padding))
        }
    }
}

impl<B: KernelOps, C: CheckpointStrategy> KernelOps for Autodiff<B, C> {
    fn ferrite_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        tracked_conv::<B, C>(x, weight, ConvKind::Full { stride }, padding)
    }

    fn ferrite_depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        tracked_conv::<B, C>(x, weight, ConvKind::Depthwise, padding)
    }

    fn ferrite_depthwise_conv2d_backward(
        _x: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
        _padding: [usize; 2],
        _need_x_grad: bool,
    ) -> ConvGrads<Self> {
        panic!("second derivatives of ferrite's depthwise conv2d are not implemented");
    }

    fn ferrite_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct PoolBackward;

        impl<B: KernelOps> Backward<B, 1> for PoolBackward {
            type State = NodeId;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(ops.state);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::ferrite_max_pool2x2_backward(x, grad));
                }
            }
        }

        match PoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish(x_state, B::ferrite_max_pool2x2(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::ferrite_max_pool2x2(x.into_primitive())),
        }
    }

    fn ferrite_max_pool2x2_backward(
        _x: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        panic!("second derivatives of ferrite's max pool are not implemented");
    }

    fn ferrite_conv2d_backward(
        _x: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
        _stride: [usize; 2],
        _padding: [usize; 2],
        _need_x_grad: bool,
    ) -> ConvGrads<Self> {
        panic!("second derivatives of ferrite's conv2d are not implemented");
    }

    fn ferrite_conv2d_affine(
        _x: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
        _scale: FloatTensor<Self>,
        _shift: FloatTensor<Self>,
        _stride: [usize; 2],
        _padding: [usize; 2],
        _relu: bool,
    ) -> FloatTensor<Self> {
        panic!(
            "ferrite's fused conv + scale/shift + ReLU is for inference; it records no gradient"
        );
    }

    fn ferrite_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> NormTrain<Self> {
        #[derive(Debug)]
        struct NormBackward;

        impl<B: KernelOps> Backward<B, 3> for NormBackward {
            // x, gamma and beta are checkpointed; the statistics come along as computed.
            type State = (
                NodeId,
                NodeId,
                NodeId,
                B::FloatTensorPrimitive,
                B::FloatTensorPrimitive,
                f64,
                bool,
            );

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_gamma, node_beta] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, gamma_state, beta_state, mean, variance, epsilon, relu) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                let gamma =
                    checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(gamma_state);
                let beta = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(beta_state);
                let g = B::ferrite_norm_train_backward(
                    x, gamma, beta, mean, variance, grad, epsilon, relu,
                );
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, g.x_grad);
                }
                if let Some(node) = node_gamma {
                    grads.register::<B>(node.id, g.gamma_grad);
                }
                if let Some(node) = node_beta {
                    grads.register::<B>(node.id, g.beta_grad);
                }
            }
        }

        match NormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let beta_state = prep.checkpoint(&beta);
                let r = B::ferrite_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                let state = (
                    x_state,
                    gamma_state,
                    beta_state,
                    r.mean.clone(),
                    r.variance.clone(),
                    epsilon,
                    relu,
                );
                NormTrain {
                    output: prep.finish(state, r.output),
                    mean: FloatTensor::<Self>::new(r.mean),
                    variance: FloatTensor::<Self>::new(r.variance),
                }
            }
            OpsKind::UnTracked(prep) => {
                let r = B::ferrite_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                NormTrain {
                    output: prep.finish(r.output),
                    mean: FloatTensor::<Self>::new(r.mean),
                    variance: FloatTensor::<Self>::new(r.variance),
                }
            }
        }
    }

    fn ferrite_norm_train_backward(
        _x: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _beta: FloatTensor<Self>,
        _mean: FloatTensor<Self>,
        _variance: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
        _epsilon: f64,
        _relu: bool,
    ) -> NormGrads<Self> {
        panic!("second derivatives of ferrite's batch norm are not implemented");
    }
}
