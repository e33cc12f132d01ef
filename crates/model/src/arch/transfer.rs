//! Transfer learning: a trained network with its classifier rebuilt for other classes, and
//! its early stages frozen.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};
use ferrite_data::classes::map_classes;

use super::{ArchConfig, Network};

impl Network {
    /// This network (trained on `from` classes) with a classifier for the `to` classes:
    /// everything but the classifier is kept; the classifier's rows of classes both share
    /// (matched by canonical emotion name, e.g. "Happiness" = "happy") are kept too, and
    /// the rows of new classes start from a fresh initialisation (seeded by the device).
    /// Returns the new architecture settings and the network.
    pub fn with_classes(
        self,
        arch: &ArchConfig,
        from: &[String],
        to: &[String],
        device: &Device,
    ) -> (ArchConfig, Network) {
        let mut new_arch = arch.clone();
        new_arch.num_classes = to.len();
        // Parameter ids are positional, so the fresh head's ids are those of the old one.
        let fresh = new_arch.init(device);
        let rows = map_classes(to, from);
        let net = match (self, fresh) {
            (Network::Ferrite(mut n), Network::Ferrite(f)) => {
                n.fc = merge_linear(n.fc, f.fc, &rows);
                Network::Ferrite(n)
            }
            (Network::MiniXception(mut n), Network::MiniXception(f)) => {
                n.head = merge_conv(n.head, f.head, &rows);
                Network::MiniXception(n)
            }
            (Network::Vgg13(mut n), Network::Vgg13(f)) => {
                n.fc3 = merge_linear(n.fc3, f.fc3, &rows);
                Network::Vgg13(n)
            }
            _ => unreachable!("the same architecture config builds the same network"),
        };
        (new_arch, net)
    }

    /// How many stages [`Network::freeze`] can hold fixed.
    pub fn stages(&self) -> usize {
        match self {
            // stem, stage 1, stage 2, stage 3
            Network::Ferrite(_) => 4,
            // the two plain convs, then the four modules
            Network::MiniXception(n) => 1 + n.modules.len(),
            // the four conv blocks
            Network::Vgg13(n) => n.blocks.len(),
        }
    }

    /// Stops gradients in the first `stages` stages (their weights stay as they are; batch
    /// norm statistics still follow the new data), so that little data trains only the
    /// later, more task-specific layers and the classifier.
    pub fn freeze(self, stages: usize) -> Result<Network, String> {
        if stages > self.stages() {
            return Err(format!(
                "cannot freeze {stages} stages: this network has {}",
                self.stages()
            ));
        }
        Ok(match self {
            Network::Ferrite(mut n) => {
                if stages >= 1 {
                    n.stem = n.stem.no_grad();
                }
                if stages >= 2 {
                    n.stage1 = n.stage1.no_grad();
                }
                if stages >= 3 {
                    n.stage2_in = n.stage2_in.no_grad();
                    n.stage2 = n.stage2.no_grad();
                }
                if stages >= 4 {
                    n.stage3_in = n.stage3_in.no_grad();
                    n.stage3 = n.stage3.no_grad();
                }
                Network::Ferrite(n)
            }
            Network::MiniXception(mut n) => {
                if stages >= 1 {
                    n.base = n.base.no_grad();
                }
                // Stage 1 is the plain convs, so module i is stage i + 2.
                n.modules = no_grad_first(n.modules, stages.saturating_sub(1));
                Network::MiniXception(n)
            }
            Network::Vgg13(mut n) => {
                n.blocks = no_grad_first(n.blocks, stages);
                n.norms = no_grad_first(n.norms, stages);
                Network::Vgg13(n)
            }
        })
    }
}

/// `parts` with the gradients of the first `count` stopped.
fn no_grad_first<M: Module>(parts: Vec<M>, count: usize) -> Vec<M> {
    parts
        .into_iter()
        .enumerate()
        .map(|(i, m)| if i < count { m.no_grad() } else { m })
        .collect()
}

/// Values of a float tensor, on the host.
fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensor")
}

/// Copies into `fresh` the output units that `rows` maps to a unit of `old`. With
/// `unit_major` a unit's weights are contiguous (a conv's [out, in, k, k], a bias);
/// otherwise they are strided by the unit count (burn's Linear weight is [in, out]).
fn copy_units(
    old: &[f32],
    old_units: usize,
    fresh: &mut [f32],
    new_units: usize,
    rows: &[Option<usize>],
    unit_major: bool,
) {
    let unit_len = fresh.len() / new_units;
    for (j, src) in rows.iter().enumerate() {
        let Some(i) = *src else { continue };
        for k in 0..unit_len {
            if unit_major {
                fresh[j * unit_len + k] = old[i * unit_len + k];
            } else {
                fresh[k * new_units + j] = old[k * old_units + i];
            }
        }
    }
}

fn merge_param<const D: usize>(
    old: Param<Tensor<D>>,
    fresh: Param<Tensor<D>>,
    rows: &[Option<usize>],
    unit_axis: usize,
) -> Param<Tensor<D>> {
    let (id, fresh) = (fresh.id, fresh.val());
    let old = old.val();
    let (shape, device) = (fresh.dims(), fresh.device());
    let old_units = old.dims()[unit_axis];
    let mut data = values(fresh);
    copy_units(
        &values(old),
        old_units,
        &mut data,
        shape[unit_axis],
        rows,
        unit_axis == 0,
    );
    Param::initialized(id, Tensor::from_data(TensorData::new(data, shape), &device))
        .set_require_grad(true)
}

fn merge_linear(old: Linear, mut fresh: Linear, rows: &[Option<usize>]) -> Linear {
    fresh.weight = merge_param(old.weight, fresh.weight, rows, 1);
    if let (Some(o), Some(f)) = (old.bias, fresh.bias.take()) {
        fresh.bias = Some(merge_param(o, f, rows, 0));
    }
    fresh
}

fn merge_conv(old: Conv2d, mut fresh: Conv2d, rows: &[Option<usize>]) -> Conv2d {
    fresh.weight = merge_param(old.weight, fresh.weight, rows, 0);
    if let (Some(o), Some(f)) = (old.bias, fresh.bias.take()) {
        fresh.bias = Some(merge_param(o, f, rows, 0));
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ArchKind;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn known_classes_keep_their_scores_and_the_body_is_unchanged() {
        let device = Device::flex();
        for kind in ArchKind::ALL {
            let from = names(&[
                "Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral",
            ]);
            // A CK+-like folder: other spellings, an order of its own, one new class.
            let to = names(&["happiness", "contempt", "anger", "surprised"]);
            let arch = ArchConfig::new(kind, from.len());
            device.seed(3);
            let net = arch.init(&device);
            let x = Tensor::<4>::random(
                [2, 1, 48, 48],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let before = values(net.valid().forward(x.clone()));
            let (new_arch, tuned) = net.with_classes(&arch, &from, &to, &device);
            assert_eq!(new_arch.num_classes, 4);
            let after = values(tuned.valid().forward(x));
            for (j, i) in [(0, 3), (2, 0), (3, 5)] {
                for s in 0..2 {
                    let (a, b) = (after[s * 4 + j], before[s * 7 + i]);
                    assert!(
                        (a - b).abs() < 1e-4,
                        "{kind:?}: logit {j} = old {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn frozen_stages_get_no_gradient() {
        let device = Device::flex().autodiff();
        let net = ArchConfig::new(ArchKind::Ferrite, 7).init(&device);
        assert_eq!(net.stages(), 4);
        assert!(net.clone().freeze(5).is_err());
        let net = net.freeze(2).unwrap();
        let x = Tensor::<4>::ones([2, 1, 48, 48], &device);
        let loss = net.forward(x).sum();
        let grads = loss.backward();
        let Network::Ferrite(n) = &net else {
            unreachable!()
        };
        assert!(n.stem[0].conv.weight.val().grad(&grads).is_none());
        assert!(n.stage1[1].conv.weight.val().grad(&grads).is_none());
        assert!(n.stage2_in.conv.weight.val().grad(&grads).is_some());
        assert!(n.fc.weight.val().grad(&grads).is_some());
    }

    #[test]
    fn freezing_vgg13_bn_holds_its_norms_too() {
        let device = Device::flex().autodiff();
        let net = ArchConfig::new(ArchKind::Vgg13Bn, 7).init(&device);
        let net = net.freeze(1).unwrap();
        let x = Tensor::<4>::ones([2, 1, 48, 48], &device);
        let grads = net.forward(x).sum().backward();
        let Network::Vgg13(n) = &net else {
            unreachable!()
        };
        assert!(n.blocks[0][1].weight.val().grad(&grads).is_none());
        assert!(n.norms[0][1].gamma.val().grad(&grads).is_none());
        assert!(n.blocks[1][0].weight.val().grad(&grads).is_some());
        assert!(n.norms[1][0].gamma.val().grad(&grads).is_some());
    }
}
