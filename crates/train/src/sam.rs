//! Sharpness-aware minimisation (SAM; Foret et al. 2021). A step takes its gradient not at
//! the weights but at the worst point near them: the weights moved a distance `rho` up
//! their gradient. Descending that gradient favours weights whose whole neighbourhood has
//! a low loss (a flat minimum), which generalise better and suffer less from wrong labels,
//! as FER2013 has; the price is a second forward and backward pass every step.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use ferrite_model::Network;

/// A copy of `net` with every weight that has a gradient in `grads` moved by
/// `rho * g / |g|`, `|g|` the norm of the whole gradient. The copy's weights keep their
/// ids, so the gradient taken at the copy applies to `net`.
pub fn ascended(net: &Network, grads: &GradientsParams, rho: f64) -> Network {
    let mut norm = SquaredNorm { grads, sum: None };
    net.visit(&mut norm);
    let sum = norm.sum.map_or(0.0, |s| s.into_scalar::<f32>() as f64);
    let scale = (rho / (sum.sqrt() + 1e-12)) as f32;
    net.clone().map(&mut Shift { grads, scale })
}

/// The squared norm of the gradients of a network's weights, summed on the device so that
/// it is read back once.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let square = (g.clone() * g).sum();
            self.sum = Some(match self.sum.take() {
                Some(s) => s + square,
                None => square,
            });
        }
    }
}

struct Shift<'a> {
    grads: &'a GradientsParams,
    scale: f32,
}

impl ModuleMapper for Shift<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(g) = self.grads.get::<D>(param.id) else {
            return param;
        };
        let scale = self.scale;
        param.map(|w| {
            // A new leaf: the moved weight, not the sum, is what the second pass differentiates.
            let require_grad = w.is_require_grad();
            Tensor::from_inner(w.inner() + g.mul_scalar(scale)).set_require_grad(require_grad)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::average::weights;
    use burn::tensor::{Device, TensorData};
    use ferrite_data::face::SIDE;
    use ferrite_model::{ArchConfig, ArchKind};

    #[test]
    fn moves_the_weights_rho_up_the_gradient() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let net = ArchConfig::new(ArchKind::Ferrite, 7).init(&device);
        let n = 4;
        let pixels: Vec<f32> = (0..n * SIDE * SIDE)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [n, 1, SIDE, SIDE]), &device);
        // The loss of a forward pass in training mode, its dropout drawn the same every time.
        let loss = |net: &Network| {
            device.seed(9);
            net.forward(x.clone()).sum()
        };
        let grads = GradientsParams::from_grads(loss(&net).backward(), &net);

        let rho = 0.05;
        let before = weights(&net);
        let after = weights(&ascended(&net, &grads, rho));
        // The shift, over all the weights together, has length rho; what has no gradient
        // (batch-norm statistics) stays.
        let (mut squared, mut moved, mut still) = (0.0f64, 0, 0);
        for (name, b) in &before {
            let a = &after[name];
            let shift: Vec<f64> = a.iter().zip(b).map(|(a, b)| (a - b) as f64).collect();
            let length: f64 = shift.iter().map(|d| d * d).sum();
            if name.contains("running") {
                assert_eq!(length, 0.0, "{name} moved");
                still += 1;
            } else if length > 0.0 {
                squared += length;
                moved += 1;
            }
        }
        assert!(still > 0 && moved > 20, "moved {moved}, still {still}");
        assert!(
            (squared.sqrt() - rho).abs() < 1e-3 * rho,
            "shift length {} for rho {rho}",
            squared.sqrt()
        );
        // Along the gradient: the loss rises, to first order by rho * |g|.
        let value = |net: &Network| loss(net).into_scalar::<f32>();
        assert!(value(&ascended(&net, &grads, rho)) > value(&net));
    }
}
