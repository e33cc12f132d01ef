//! The networks: `ferrite` (ours) and the baselines `mini-xception`, `vgg13` and `vgg13-bn`.
//! See docs/architecture.md for the layer tables and the reasons behind `ferrite`.

use std::fmt;
use std::str::FromStr;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::layers::{
    ConvBnRelu, Residual, SeparableBn, conv, conv_act_forward, conv_bn_forward, max_pool,
    pool_forward,
};
use crate::summary::Trace;

mod transfer;

/// Side of the square gray input every network takes.
pub const INPUT_SIDE: usize = ferrite_data::face::SIDE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchKind {
    Ferrite,
    MiniXception,
    Vgg13,
    /// VGG13 with batch norm after each convolution: not the FERPlus paper's network, but one
    /// that trains in our pipeline, where the plain one stays at the class prior.
    Vgg13Bn,
}

impl ArchKind {
    pub const ALL: [ArchKind; 4] = [
        ArchKind::Ferrite,
        ArchKind::MiniXception,
        ArchKind::Vgg13,
        ArchKind::Vgg13Bn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ArchKind::Ferrite => "ferrite",
            ArchKind::MiniXception => "mini-xception",
            ArchKind::Vgg13 => "vgg13",
            ArchKind::Vgg13Bn => "vgg13-bn",
        }
    }

    /// Dropout before the classifier, as each design prescribes.
    pub fn default_dropout(self) -> f64 {
        match self {
            ArchKind::Ferrite => 0.5,
            ArchKind::MiniXception => 0.0,
            ArchKind::Vgg13 | ArchKind::Vgg13Bn => 0.5,
        }
    }
}

impl fmt::Display for ArchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ArchKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ArchKind::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = ArchKind::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown architecture `{s}`: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Everything needed to rebuild a network: stored in every model file and checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchConfig {
    pub arch: ArchKind,
    pub num_classes: usize,
    /// Dropout probability before the classifier.
    pub dropout: f64,
}

impl ArchConfig {
    pub fn new(arch: ArchKind, num_classes: usize) -> Self {
        ArchConfig {
            arch,
            num_classes,
            dropout: arch.default_dropout(),
        }
    }

    pub fn init(&self, device: &Device) -> Network {
        let net = match self.arch {
            ArchKind::Ferrite => Network::Ferrite(FerriteNet::new(self, device)),
            ArchKind::MiniXception => Network::MiniXception(MiniXception::new(self, device)),
            ArchKind::Vgg13 | ArchKind::Vgg13Bn => Network::Vgg13(Vgg13::new(self, device)),
        };
        net.map(&mut PositionalIds(0))
    }
}

/// Numbers the parameters 1, 2, 3... in module order. Optimiser state is keyed by
/// parameter id, and burn draws fresh random ids for every new network: with positional
/// ids, the state saved in a checkpoint still matches the network rebuilt to resume it.
struct PositionalIds(u64);

impl ModuleMapper for PositionalIds {
    fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.0 += 1;
        param.id = ParamId::from(self.0);
        param
    }
}

/// Any of the networks, behind one type.
#[derive(Module, Debug)]
// One value per loaded model, moved a handful of times: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Network {
    Ferrite(FerriteNet),
    MiniXception(MiniXception),
    Vgg13(Vgg13),
}

impl Network {
    /// Logits `[batch, classes]` for normalised faces `[batch, 1, 48, 48]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Network::Ferrite(n) => n.forward(x),
            Network::MiniXception(n) => n.forward(x),
            Network::Vgg13(n) => n.forward(x),
        }
    }

    /// Commits batch norm's pending running-statistics update. burn keeps the latest update
    /// of a running mean/variance aside until the next one; without this, a checkpoint or
    /// model file would hold statistics one training step old.
    pub fn sync_running_stats(&self) {
        let norms: Vec<&BatchNorm> = match self {
            Network::Ferrite(n) => {
                let mut v: Vec<&BatchNorm> =
                    n.stem.iter().chain(&n.stage1).map(|l| &l.bn).collect();
                for (entry, res) in [(&n.stage2_in, &n.stage2), (&n.stage3_in, &n.stage3)] {
                    v.extend([&entry.bn, &res.a.bn, &res.bn]);
                }
                v
            }
            Network::MiniXception(n) => {
                let mut v: Vec<&BatchNorm> = n.base.iter().map(|l| &l.bn).collect();
                for m in &n.modules {
                    v.extend([&m.shortcut_bn, &m.sep1.bn, &m.sep2.bn]);
                }
                v
            }
            Network::Vgg13(n) => n.norms.iter().flatten().collect(),
        };
        for bn in norms {
            bn.running_mean.value_sync();
            bn.running_var.value_sync();
        }
    }

    /// The layer table, for one 1x48x48 input.
    pub fn trace(&self) -> Trace {
        let mut t = Trace::new(1, INPUT_SIDE);
        match self {
            Network::Ferrite(n) => n.trace(&mut t),
            Network::MiniXception(n) => n.trace(&mut t),
            Network::Vgg13(n) => n.trace(&mut t),
        }
        t
    }
}

/// ferrite: full resolution first, then lightweight residual stages.
///
/// - stem, 48x48: two 3x3 convs with 16 channels. Fine detail (eye corners, lip edges)
///   lives at full resolution, and with one input channel this is cheap.
/// - stage 1, 24x24: two 3x3 convs with 32 channels.
/// - stage 2, 12x12: 3x3 conv to 96 channels, then a residual block.
/// - stage 3, 6x6: 3x3 conv to 192 channels, then a residual block.
/// - head: max pool to 3x3 (keeps where a feature is: mouth vs. eyes), flatten,
///   dropout, linear.
#[derive(Module, Debug)]
pub struct FerriteNet {
    stem: Vec<ConvBnRelu>,
    stage1: Vec<ConvBnRelu>,
    stage2_in: ConvBnRelu,
    stage2: Residual,
    stage3_in: ConvBnRelu,
    stage3: Residual,
    pool: MaxPool2d,
    dropout: Dropout,
    fc: Linear,
}

impl FerriteNet {
    const WIDTHS: [usize; 4] = [16, 32, 96, 192];

    fn new(cfg: &ArchConfig, d: &Device) -> Self {
        let [w0, w1, w2, w3] = Self::WIDTHS;
        FerriteNet {
            stem: vec![ConvBnRelu::new(1, w0, d), ConvBnRelu::new(w0, w0, d)],
            stage1: vec![ConvBnRelu::new(w0, w1, d), ConvBnRelu::new(w1, w1, d)],
            stage2_in: ConvBnRelu::new(w1, w2, d),
            stage2: Residual::new(w2, d),
            stage3_in: ConvBnRelu::new(w2, w3, d),
            stage3: Residual::new(w3, d),
            pool: max_pool(2, 2, 0),
            dropout: DropoutConfig::new(cfg.dropout).init(),
            fc: LinearConfig::new(w3 * 3 * 3, cfg.num_classes).init(d),
        }
    }

    fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for layer in &self.stem {
            x = layer.forward(x);
        }
        x = pool_forward(&self.pool, x);
        for layer in &self.stage1 {
            x = layer.forward(x);
        }
        x = pool_forward(&self.pool, x);
        x = pool_forward(&self.pool, self.stage2.forward(self.stage2_in.forward(x)));
        x = pool_forward(&self.pool, self.stage3.forward(self.stage3_in.forward(x)));
        let x: Tensor<2> = x.flatten(1, 3);
        self.fc.forward(self.dropout.forward(x))
    }

    fn trace(&self, t: &mut Trace) {
        for (i, layer) in self.stem.iter().enumerate() {
            layer.trace(&format!("stem.{i}"), t);
        }
        t.pool("pool1", &self.pool);
        for (i, layer) in self.stage1.iter().enumerate() {
            layer.trace(&format!("stage1.{i}"), t);
        }
        t.pool("pool2", &self.pool);
        self.stage2_in.trace("stage2.in", t);
        self.stage2.trace("stage2.res", t);
        t.pool("pool3", &self.pool);
        self.stage3_in.trace("stage3.in", t);
        self.stage3.trace("stage3.res", t);
        t.pool("pool4", &self.pool);
        t.flatten("flatten");
        t.note("dropout", &format!("dropout {}", self.dropout.prob));
        t.linear("fc", &self.fc);
    }
}

/// mini-Xception (Arriaga, Valdenegro-Toro & Plöger 2017), at 48x48.
///
/// Two plain 3x3 convs (8 channels, no padding), four residual modules of two depthwise-
/// separable convs and a 3x3/2 max pool with a strided 1x1 shortcut (16, 32, 64, 128
/// channels), then a 3x3 conv to one map per class and global average pooling.
#[derive(Module, Debug)]
pub struct MiniXception {
    base: Vec<ConvBnRelu>,
    modules: Vec<XceptionModule>,
    head: Conv2d,
}

#[derive(Module, Debug)]
pub struct XceptionModule {
    shortcut: Conv2d,
    shortcut_bn: BatchNorm,
    sep1: SeparableBn,
    sep2: SeparableBn,
    pool: MaxPool2d,
}

impl MiniXception {
    fn new(cfg: &ArchConfig, d: &Device) -> Self {
        let mut base = vec![ConvBnRelu::new(1, 8, d), ConvBnRelu::new(8, 8, d)];
        for b in &mut base {
            b.conv = conv(b.conv.weight.dims()[1], b.conv.weight.dims()[0], 3, 1, 0, d); // 'valid'
        }
        let mut modules = Vec::new();
        let mut cin = 8;
        for cout in [16, 32, 64, 128] {
            modules.push(XceptionModule {
                shortcut: conv(cin, cout, 1, 2, 0, d),
                shortcut_bn: BatchNormConfig::new(cout).init(d),
                sep1: SeparableBn::new(cin, cout, d),
                sep2: SeparableBn::new(cout, cout, d),
                pool: max_pool(3, 2, 1),
            });
            cin = cout;
        }
        let head = burn::nn::conv::Conv2dConfig::new([cin, cfg.num_classes], [3, 3])
            .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(d);
        MiniXception {
            base,
            modules,
            head,
        }
    }

    fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for b in &self.base {
            x = b.forward(x);
        }
        for m in &self.modules {
            let residual = conv_bn_forward(&m.shortcut, &m.shortcut_bn, x.clone(), false);
            let y = m.sep2.forward(relu(m.sep1.forward(x)));
            x = m.pool.forward(y) + residual;
        }
        let x = conv_act_forward(&self.head, x, false);
        let [n, c, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([n, c])
    }

    fn trace(&self, t: &mut Trace) {
        for (i, b) in self.base.iter().enumerate() {
            b.trace(&format!("base.{i}"), t);
        }
        for (i, m) in self.modules.iter().enumerate() {
            let name = format!("module{}", i + 1);
            let input = t.clone();
            m.sep1.trace(&format!("{name}.sep1"), t);
            m.sep2.trace(&format!("{name}.sep2"), t);
            t.pool(&format!("{name}.pool"), &m.pool);
            // The shortcut runs beside the main path from the module's input.
            let mut side = input;
            side.layers.clear();
            side.conv(&format!("{name}.shortcut"), &m.shortcut);
            side.norm(&format!("{name}.shortcut.bn"), &m.shortcut_bn);
            t.layers.extend(side.layers);
            t.note(&format!("{name}.add"), "residual add");
        }
        t.conv("head", &self.head);
        t.global_avg_pool("gap");
    }
}

/// VGG13 of the FERPlus paper (Barsoum et al. 2016), at 48x48: 10 3x3 conv layers with
/// ReLU in blocks of 64, 128, 256, 256 channels (2, 2, 3, 3 convs), each block ending in a
/// 2x2 max pool and dropout 0.25, then two 1024-unit dense layers with dropout 0.5. Like
/// the original, `vgg13` has no batch norm and starts as the paper's code (Microsoft's
/// FERPlus repository, CNTK): Glorot-uniform weights in every layer, zero biases.
/// `vgg13-bn` puts a norm between each conv and its ReLU (and starts the convs as
/// `ferrite`'s, with He's weights, and the dense layers with burn's defaults).
#[derive(Module, Debug)]
pub struct Vgg13 {
    blocks: Vec<Vec<Conv2d>>,
    /// Per block, one norm per conv; empty for `vgg13`.
    norms: Vec<Vec<BatchNorm>>,
    pool: MaxPool2d,
    block_dropout: Dropout,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    dropout: Dropout,
}

impl Vgg13 {
    fn new(cfg: &ArchConfig, d: &Device) -> Self {
        let with_norms = cfg.arch == ArchKind::Vgg13Bn;
        let (mut blocks, mut norms) = (Vec::new(), Vec::new());
        let mut cin = 1;
        for (width, n) in [(64, 2), (128, 2), (256, 3), (256, 3)] {
            let (mut block, mut block_norms) = (Vec::new(), Vec::new());
            for _ in 0..n {
                if with_norms {
                    let layer = ConvBnRelu::new(cin, width, d);
                    block.push(layer.conv);
                    block_norms.push(layer.bn);
                } else {
                    let mut c = burn::nn::conv::Conv2dConfig::new([cin, width], [3, 3])
                        .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .with_initializer(burn::nn::Initializer::XavierUniform { gain: 1.0 })
                        .init(d);
                    c.bias = Some(zero_bias(width, d));
                    block.push(c);
                }
                cin = width;
            }
            blocks.push(block);
            if with_norms {
                norms.push(block_norms);
            }
        }
        let side = INPUT_SIDE / 16;
        let dense = |inputs: usize, outputs: usize| {
            if with_norms {
                LinearConfig::new(inputs, outputs).init(d)
            } else {
                let mut l = LinearConfig::new(inputs, outputs)
                    .with_initializer(burn::nn::Initializer::XavierUniform { gain: 1.0 })
                    .init(d);
                l.bias = Some(zero_bias(outputs, d));
                l
            }
        };
        Vgg13 {
            blocks,
            norms,
            pool: max_pool(2, 2, 0),
            block_dropout: DropoutConfig::new(0.25).init(),
            fc1: dense(cin * side * side, 1024),
            fc2: dense(1024, 1024),
            fc3: dense(1024, cfg.num_classes),
            dropout: DropoutConfig::new(cfg.dropout).init(),
        }
    }

    fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for (b, block) in self.blocks.iter().enumerate() {
            for (i, c) in block.iter().enumerate() {
                x = match self.norms.get(b) {
                    Some(norms) => conv_bn_forward(c, &norms[i], x, true),
                    None => conv_act_forward(c, x, true),
                };
            }
            x = self.block_dropout.forward(pool_forward(&self.pool, x));
        }
        let x: Tensor<2> = x.flatten(1, 3);
        let x = self.dropout.forward(relu(self.fc1.forward(x)));
        let x = self.dropout.forward(relu(self.fc2.forward(x)));
        self.fc3.forward(x)
    }

    fn trace(&self, t: &mut Trace) {
        for (b, block) in self.blocks.iter().enumerate() {
            for (i, c) in block.iter().enumerate() {
                let name = format!("conv{}_{}", b + 1, i + 1);
                t.conv(&name, c);
                if let Some(norms) = self.norms.get(b) {
                    t.norm(&format!("{name}.bn"), &norms[i]);
                }
            }
            t.pool(&format!("pool{}", b + 1), &self.pool);
            t.note(&format!("dropout{}", b + 1), "dropout 0.25");
        }
        t.flatten("flatten");
        t.linear("fc5", &self.fc1);
        t.linear("fc6", &self.fc2);
        t.linear("fc7", &self.fc3);
    }
}

/// A bias that starts at zero, as the paper's CNTK layers start theirs (burn draws biases
/// from the weights' initializer). Without batch norm the signal halves in variance at
/// each ReLU layer from Glorot's weights, so random biases weigh more than they would in
/// `ferrite`; whether that is why VGG13 stays at the class prior here is not shown: it
/// stays there from this start too (docs/results.md).
fn zero_bias(len: usize, d: &Device) -> Param<Tensor<1>> {
    burn::nn::Initializer::Zeros.init([len], d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().expect("f32 values")
    }

    fn vgg13(kind: ArchKind) -> Vgg13 {
        match ArchConfig::new(kind, 8).init(&Device::flex()) {
            Network::Vgg13(net) => net,
            _ => unreachable!("a VGG13 configuration builds a VGG13"),
        }
    }

    /// `vgg13` starts as the paper's code: every bias zero, every weight within Glorot's
    /// bound. `vgg13-bn` keeps burn's dense defaults, so its results stay reproducible.
    #[test]
    fn vgg13_starts_as_the_paper_and_vgg13_bn_as_before() {
        let net = vgg13(ArchKind::Vgg13);
        let convs = net.blocks.iter().flatten();
        for (i, c) in convs.enumerate() {
            let bias = values(c.bias.as_ref().expect("conv bias").val());
            assert!(bias.iter().all(|&b| b == 0.0), "conv {i}: bias not zero");
        }
        for (name, l) in [("fc1", &net.fc1), ("fc2", &net.fc2), ("fc3", &net.fc3)] {
            let bias = values(l.bias.as_ref().expect("dense bias").val());
            assert!(bias.iter().all(|&b| b == 0.0), "{name}: bias not zero");
            let [fan_in, fan_out] = l.weight.val().dims();
            let bound = (6.0 / (fan_in + fan_out) as f32).sqrt();
            let w = values(l.weight.val().flatten(0, 1));
            let largest = w.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(
                largest <= bound,
                "{name}: |w| {largest} above Glorot's {bound}"
            );
            // Uniform over ±bound: the largest of thousands of draws lies near the bound.
            assert!(
                largest > 0.9 * bound,
                "{name}: |w| at most {largest}, bound {bound}"
            );
        }

        let bn = vgg13(ArchKind::Vgg13Bn);
        let bias = values(bn.fc3.bias.as_ref().expect("dense bias").val());
        assert!(
            bias.iter().any(|&b| b != 0.0),
            "vgg13-bn: dense biases start at zero, so its start changed"
        );
    }
}
