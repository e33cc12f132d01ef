//! `POST /v1/predict` on arbitrary bodies, through the real router: raw bodies under a few
//! content types and multipart forms. Every answer must be a JSON document with a status
//! that is not a server error.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use ferrite_infer::predict::Predictor;
use ferrite_serve::{AppState, ServeConfig, router};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

fn state() -> Arc<AppState> {
    static STATE: OnceLock<Arc<AppState>> = OnceLock::new();
    STATE
        .get_or_init(|| {
            let predictor = Predictor::load(None, burn::tensor::Device::flex()).unwrap();
            let config = ServeConfig {
                max_body_bytes: 1 << 20,
                max_pixels: 1 << 16, // keeps detection on a decoded image quick
                ..ServeConfig::default()
            };
            Arc::new(AppState::new(predictor, config))
        })
        .clone()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

const TYPES: [&str; 5] = [
    "image/png",
    "application/octet-stream",
    "multipart/form-data; boundary=fuzz",
    "multipart/form-data",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = TYPES[selector as usize % TYPES.len()];
    let query = if selector & 0x80 != 0 { "?no_detect=true" } else { "" };
    let request = Request::post(format!("/v1/predict{query}"))
        .header("content-type", content_type)
        .body(Body::from(body.to_vec()))
        .unwrap();
    let response = runtime().block_on(router(state()).oneshot(request)).unwrap();
    let status = response.status();
    assert!(!status.is_server_error(), "{status}");
    let bytes = runtime()
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .unwrap();
    assert!(bytes.starts_with(b"{"), "not JSON: {status}");
});
