//! `ferrite eval` on a hand-made model and dataset: the confusion matrix is known exactly.

mod common;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::Tensor;
use common::*;
use ferrite_model::{ArchConfig, ArchKind, ModelMeta};
use serde_json::Value;

/// Makes the classifier ignore its input and always answer class `winner`: zero weights,
/// and a bias of 10 for that class.
struct AlwaysAnswer {
    winner: usize,
    classes: usize,
}

impl ModuleMapper for AlwaysAnswer {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dims = param.dims();
        let (id, value, mapper) = param.consume();
        let value = match (D, dims.as_slice()) {
            // The only rank-2 parameter of `ferrite` is the classifier's weight.
            (2, _) => value.zeros_like(),
            // The classifier's bias is the only vector as long as the class count.
            (1, [n]) if *n == self.classes => {
                let device = value.device();
                let mut bias = vec![0f32; self.classes];
                bias[self.winner] = 10.0;
                Tensor::<1>::from_floats(bias.as_slice(), &device).reshape(value.shape())
            }
            _ => value,
        };
        Param::from_mapped_value(id, value, mapper)
    }
}

#[test]
fn hand_made_model_gives_the_expected_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    // A FERPlus-style model (8 classes) that always answers "happiness".
    let classes: Vec<String> = ferrite_data::classes::FERPLUS_CLASSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cfg = ArchConfig::new(ArchKind::Ferrite, classes.len());
    let device = ferrite_model::device::parse("cpu").unwrap();
    let net = cfg.init(&device).map(&mut AlwaysAnswer {
        winner: 1,
        classes: classes.len(),
    });
    let model = dir.path().join("always-happy.safetensors");
    ferrite_model::file::save(&model, &net, &ModelMeta::new(cfg, classes, "hand-made")).unwrap();

    // A folder dataset with FER2013-style names and one class the model does not know.
    let data = dir.path().join("faces");
    for (class, n) in [("Angry", 2), ("happy", 3), ("bored", 1)] {
        let d = data.join("test").join(class);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..n {
            image::GrayImage::from_pixel(48, 48, image::Luma([40 * i as u8]))
                .save(d.join(format!("{i}.png")))
                .unwrap();
        }
    }
    let out = ferrite_ok(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--images",
        data.to_str().unwrap(),
        "--json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["classes"], serde_json::json!(["Angry", "happy"]));
    assert_eq!(json["confusion"], serde_json::json!([[0, 2], [0, 3]]));
    assert_eq!(json["n"], 5);
    assert!((json["accuracy"].as_f64().unwrap() - 0.6).abs() < 1e-12);
    assert_eq!(json["left_out"], serde_json::json!([["bored", 1]]));
    // happy: precision 3/5, recall 1; Angry: never predicted.
    assert!((json["per_class"]["happy"]["precision"].as_f64().unwrap() - 0.6).abs() < 1e-12);
    assert_eq!(json["per_class"]["Angry"]["recall"], 0.0);
}
