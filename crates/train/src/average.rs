//! Weight averaging (stochastic weight averaging, Izmailov et al. 2018): the equal mean of
//! a network's weights at the end of each of a run's last epochs. The weights of late
//! epochs sit around a wide minimum; their mean lies nearer its centre, which tends to
//! generalise better than any one of them. Batch norm's running statistics belong to the
//! weights they were measured with, so after averaging they are measured again.

use std::collections::HashMap;

use burn::store::ModuleSnapshot;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::tensor::{Bytes, DType, Device, Tensor, TensorData};
use ferrite_data::face::SIDE;
use ferrite_data::loader::Loader;
use ferrite_model::Network;

/// The running mean of the weights added so far.
pub struct Average {
    pub net: Network,
    /// How many networks the mean is over.
    pub count: usize,
}

impl Average {
    /// The mean of one network: itself.
    pub fn new(net: &Network) -> Self {
        Average {
            net: net.clone(),
            count: 1,
        }
    }

    /// Adds a network of the same architecture: `mean += (net - mean) / (count + 1)`, over
    /// every tensor the network holds (weights and batch-norm statistics alike).
    pub fn add(&mut self, net: &Network) -> Result<(), String> {
        let mut latest: HashMap<String, PackTensor> = net
            .collect(None, None, false)
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        let share = 1.0 / (self.count + 1) as f32;
        let mut updated = Vec::new();
        for mean in self.net.collect(None, None, false) {
            let other = latest
                .remove(&mean.name)
                .ok_or_else(|| format!("weight averaging: {} is missing", mean.name))?;
            let (name, dtype, shape, id, bytes) = mean.into_parts().map_err(|e| e.to_string())?;
            if dtype != DType::F32 || other.dtype != DType::F32 {
                return Err(format!("weight averaging: {name} is not 32-bit float"));
            }
            let mut values = floats(&bytes);
            let latest = floats(&other.into_bytes().map_err(|e| e.to_string())?);
            if latest.len() != values.len() {
                return Err(format!("weight averaging: {name} changed size"));
            }
            for (m, x) in values.iter_mut().zip(latest) {
                *m += (x - *m) * share;
            }
            updated.push(PackTensor::new(
                name,
                dtype,
                shape,
                id,
                Bytes::from_elems(values),
            ));
        }
        let result = self.net.apply(updated, None, None, false);
        if !result.errors.is_empty() || !result.missing.is_empty() {
            return Err(format!("weight averaging: cannot set the mean: {result:?}"));
        }
        self.count += 1;
        Ok(())
    }
}

/// Little-endian f32 values (copied: the bytes need not be aligned for f32).
fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Measures batch norm's running statistics for `net`'s weights: one pass over an epoch of
/// training batches, in training mode, without optimiser steps.
///
/// Each batch moves the statistics by batch norm's momentum (0.1), so they end as a mean over
/// the last few dozen batches, a few thousand images: close enough to the mean over all of
/// them, and the same estimate the weights of every ordinary epoch are scored with.
pub fn measure_norms(net: &Network, batches: Loader, device: &Device) {
    for batch in batches {
        let x = Tensor::<4>::from_data(
            TensorData::new(batch.images, [batch.len, 1, SIDE, SIDE]),
            device,
        );
        // The statistics update as a side effect of the forward pass; nothing else is kept.
        drop(net.forward(x.detach()));
    }
    net.sync_running_stats();
}

/// Every tensor of `net` by name, as f32 values (tests compare networks with it).
#[cfg(test)]
pub(crate) fn weights(net: &Network) -> HashMap<String, Vec<f32>> {
    net.collect(None, None, false)
        .into_iter()
        .map(|t| {
            let name = t.name.clone();
            (name, floats(&t.into_bytes().unwrap()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_model::{ArchConfig, ArchKind};

    #[test]
    fn the_average_is_the_mean_of_every_tensor() {
        let device = Device::default();
        let arch = ArchConfig::new(ArchKind::Ferrite, 7);
        let nets: Vec<Network> = (0..3)
            .map(|i| {
                device.seed(i);
                arch.init(&device)
            })
            .collect();
        let mut average = Average::new(&nets[0]);
        average.add(&nets[1]).unwrap();
        average.add(&nets[2]).unwrap();
        assert_eq!(average.count, 3);
        let each: Vec<_> = nets.iter().map(weights).collect();
        let mean = weights(&average.net);
        assert_eq!(mean.len(), each[0].len());
        let mut differing = 0;
        for (name, values) in &mean {
            for (j, m) in values.iter().enumerate() {
                let expected = (each[0][name][j] + each[1][name][j] + each[2][name][j]) / 3.0;
                assert!(
                    (m - expected).abs() < 1e-5,
                    "{name}[{j}]: {m} vs {expected}"
                );
                differing += (each[0][name][j] != each[1][name][j]) as usize;
            }
        }
        // The networks were different, so the test compared real means.
        assert!(differing > 100_000, "{differing}");
    }
}
