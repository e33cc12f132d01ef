//! Model files: round trip, and a clear error for every kind of bad file.

use ferrite_model::file::{self, FORMAT_VERSION, ModelFileError};
use ferrite_model::{ArchConfig, ArchKind, ModelMeta};

fn device() -> burn::tensor::Device {
    ferrite_model::device::parse("cpu").unwrap()
}

fn model_bytes(arch: ArchKind) -> (Vec<u8>, ModelMeta) {
    let cfg = ArchConfig::new(arch, 7);
    let net = cfg.init(&device());
    let classes = ferrite_data::classes::FER2013_CLASSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut meta = ModelMeta::new(cfg, classes, "FER2013");
    meta.val_accuracy = Some(0.5);
    (file::to_bytes(&net, &meta).unwrap(), meta)
}

fn load(bytes: Vec<u8>) -> Result<ModelMeta, ModelFileError> {
    file::from_bytes(bytes, "test.safetensors", &device()).map(|(_, m)| m)
}

#[test]
fn round_trip_keeps_metadata_and_predictions() {
    let (bytes, meta) = model_bytes(ArchKind::MiniXception);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let (net, loaded) = file::load(&path, &device()).unwrap();
    assert_eq!(loaded, meta);
    // Same bytes again from the loaded network: nothing was lost.
    let again = file::to_bytes(&net, &loaded).unwrap();
    let data = |b: &[u8]| b[8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize..].to_vec();
    assert_eq!(data(&again), data(&bytes));
}

#[test]
fn truncated_file_is_refused() {
    let (bytes, _) = model_bytes(ArchKind::MiniXception);
    for cut in [4, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = load(bytes[..cut].to_vec()).unwrap_err();
        assert!(
            matches!(err, ModelFileError::Corrupt { .. }),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn flipped_bit_in_the_weights_is_refused() {
    let (mut bytes, _) = model_bytes(ArchKind::MiniXception);
    let n = bytes.len();
    bytes[n - 1000] ^= 0x10;
    let err = load(bytes).unwrap_err();
    assert!(err.to_string().contains("fail their checksum"), "{err}");
}

#[test]
fn weights_of_another_architecture_are_refused() {
    // A mini-Xception file whose metadata claims vgg13.
    let (bytes, meta) = model_bytes(ArchKind::MiniXception);
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
    let claimed = serde_json::to_string(&serde_json::to_string(&meta).unwrap()).unwrap();
    let mut vgg = meta.clone();
    vgg.arch = ArchConfig::new(ArchKind::Vgg13, 7);
    let forged = serde_json::to_string(&serde_json::to_string(&vgg).unwrap()).unwrap();
    assert!(header.contains(&claimed));
    let new_header = header.replace(&claimed, &forged);
    let mut out = (new_header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(new_header.as_bytes());
    out.extend_from_slice(&bytes[8 + header_len..]);
    let err = load(out).unwrap_err();
    assert!(
        matches!(err, ModelFileError::WrongArchitecture { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("do not fit a vgg13 network"),
        "{err}"
    );
}

#[test]
fn future_format_version_is_refused() {
    let (bytes, _) = model_bytes(ArchKind::MiniXception);
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
    let current = format!("\"format_version\":\"{FORMAT_VERSION}\"");
    assert!(header.contains(&current), "{header}");
    let new_header = header.replace(
        &current,
        &format!("\"format_version\":\"{}\"", FORMAT_VERSION + 1),
    );
    let mut out = (new_header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(new_header.as_bytes());
    out.extend_from_slice(&bytes[8 + header_len..]);
    let err = load(out).unwrap_err();
    assert!(matches!(err, ModelFileError::FutureVersion { .. }), "{err}");
}

#[test]
fn plain_safetensors_file_is_not_a_model() {
    let data = vec![0u8; 16];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &data).unwrap();
    let bytes = safetensors::serialize(vec![("w", view)], None).unwrap();
    let err = load(bytes).unwrap_err();
    assert!(matches!(err, ModelFileError::NotAModel { .. }), "{err}");
    let err = load(b"hello, this is not a model at all".to_vec()).unwrap_err();
    assert!(matches!(err, ModelFileError::Corrupt { .. }), "{err}");
}
