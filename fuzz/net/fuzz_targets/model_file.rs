//! The model-file reader on arbitrary bytes: a clear error or a model that runs.
#![no_main]

use burn::tensor::{Device, Tensor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let device = Device::flex();
    if let Ok((net, meta)) = ferrite_model::file::from_bytes(data.to_vec(), "fuzz", &device) {
        let logits = net.forward(Tensor::<4>::zeros([1, 1, 48, 48], &device));
        assert_eq!(logits.dims(), [1, meta.arch.num_classes]);
    }
});
