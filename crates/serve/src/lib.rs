//! `ferrite serve`: the predictor behind a small HTTP API, with a web page for photos and
//! the webcam.
//!
//! Routes: `POST /v1/predict` (an image as the raw body or as the multipart field `image`),
//! `GET /v1/model`, `GET /healthz`, `GET /metrics` (Prometheus text) and `GET /` (the page,
//! embedded). Bad input gets a JSON `{"error": ...}` with the status that names the problem:
//! 413 body too large, 415 not an image format we read, 422 an image too large to decode or
//! corrupt, 400 malformed multipart, 503 (with Retry-After) when the queue is full, 408 when
//! the body trickles in slower than the timeout, 504 when a prediction overruns it.
//!
//! Connections are ours to bound, not the framework's: a client gets `header_timeout` to send
//! each request's headers (this also closes idle keep-alive connections), header blocks are
//! capped in size (431), and past `max_connections` open connections a new one is answered
//! 503 and closed, so slow or idle clients cannot pin memory or file descriptors.

mod metrics;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Multipart, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use ferrite_data::decode::{DecodeError, decode_image, image_dimensions};
use ferrite_infer::detect::{DetectOptions, DetectSize};
use ferrite_infer::predict::{FaceOptions, Predictor, classify_faces, find_faces};
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

pub use metrics::Metrics;

/// The page at `/`: one self-contained file, no external assets.
const PAGE: &str = include_str!("page.html");

/// Limits and sizes of a server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Largest request body, in bytes (→ 413).
    pub max_body_bytes: usize,
    /// Largest image, in pixels, that will be decoded (→ 422): stops decompression bombs
    /// before they allocate.
    pub max_pixels: u64,
    /// Predictions running or waiting at once; more are refused with 503.
    pub queue: usize,
    /// Pixels of the images being decoded and searched at once; a request that would go
    /// over is refused with 503. Memory is about 16 bytes per pixel (the decoded image, its
    /// gray copy, the detector's integral images), so this bounds the server's memory when
    /// many large photos arrive at once. At least `max_pixels`.
    pub max_pixels_in_flight: u64,
    /// Longest the body may take to arrive (→ 408) and, again, a prediction (→ 504).
    pub timeout: Duration,
    /// Longest a connection may take to send a request's headers, or sit idle between
    /// requests, before it is closed.
    pub header_timeout: Duration,
    /// Open connections at once; more are answered 503 and closed.
    pub max_connections: usize,
}

const PIXEL_UNIT: u64 = 1024;

/// Read buffer per connection: bounds the header block, so that memory per connection is
/// bounded too (hyper's default is 400 KiB). hyper checks it between reads, so a head of
/// 100 KB may still pass; 200 KB gets 431 (measured by the serve_abuse bench).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Written to a connection over `max_connections` before closing it.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
    Content-Type: application/json\r\nContent-Length: 44\r\nConnection: close\r\n\r\n\
    {\"error\":\"too many connections, try again\"}";

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_body_bytes: 10 * 1024 * 1024,
            max_pixels: ferrite_data::decode::DEFAULT_MAX_PIXELS,
            queue: 16,
            max_pixels_in_flight: 64_000_000,
            timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            // Below the common 1024 file-descriptor limit, leaving room for the rest.
            max_connections: 512,
        }
    }
}

/// What every request handler shares.
pub struct AppState {
    predictor: Arc<Mutex<Predictor>>,
    classes: Vec<String>,
    model: Value,
    permits: Arc<Semaphore>,
    /// The pixel budget, in units of PIXEL_UNIT pixels (a semaphore counts in u32).
    pixels: Arc<Semaphore>,
    config: ServeConfig,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(predictor: Predictor, config: ServeConfig) -> AppState {
        let meta = predictor.meta();
        let model = json!({
            "source": predictor.source,
            "models": predictor.models(),
            "arch": meta.arch.arch.to_string(),
            "classes": meta.classes,
            "dataset": meta.dataset,
            "val_split": meta.val_split,
            "val_accuracy": meta.val_accuracy,
            "epochs": meta.epochs,
            "input": [meta.input_channels, meta.input_side, meta.input_side],
            "created_by": meta.created_by,
        });
        AppState {
            classes: meta.classes.clone(),
            model,
            permits: Arc::new(Semaphore::new(config.queue.max(1))),
            pixels: Arc::new(Semaphore::new(
                (config.max_pixels_in_flight.max(config.max_pixels) / PIXEL_UNIT) as usize + 1,
            )),
            predictor: Arc::new(Mutex::new(predictor)),
            config,
            metrics: Metrics::default(),
        }
    }
}

/// The application: routes, body limit, metrics.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v1/model", get(model))
        .route("/v1/predict", post(predict))
        .route("/metrics", get(metrics_text))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// Counts every request by route and status, and times it.
async fn record(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let start = Instant::now();
    let response = next.run(req).await;
    st.metrics
        .observe(&route, response.status().as_u16(), start.elapsed());
    response
}

async fn model(State(st): State<Arc<AppState>>) -> Response {
    axum::Json(st.model.clone()).into_response()
}

async fn metrics_text(State(st): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// 503 with Retry-After: a limit is reached, the request can be sent again shortly.
fn busy(message: &str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Query options of `/v1/predict`, as `ferrite predict`'s flags.
#[derive(Debug, Deserialize)]
struct PredictQuery {
    min_face: Option<u32>,
    min_score: Option<f32>,
    /// A number of pixels or `full`.
    detect_size: Option<String>,
    #[serde(default)]
    no_detect: bool,
    #[serde(default)]
    no_align: bool,
}

async fn predict(
    State(st): State<Arc<AppState>>,
    Query(q): Query<PredictQuery>,
    req: Request,
) -> Response {
    // A body announced too large is refused before it is read, rather than after the
    // client has sent 10 MB (or stalled partway and held a slot until the timeout).
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > st.config.max_body_bytes as u64) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {} bytes", st.config.max_body_bytes),
        );
    }
    // Refuse at once when full, before the body is kept: memory stays bounded under load.
    let Ok(permit) = st.permits.clone().try_acquire_owned() else {
        discard_body(req, &st).await;
        return busy("busy: too many predictions at once, retry shortly");
    };
    let detect = match detect_options(&q) {
        Ok(detect) => detect,
        Err(message) => {
            discard_body(req, &st).await;
            return error(StatusCode::BAD_REQUEST, message);
        }
    };
    // A client that trickles its body in holds a slot: it gets the same time limit.
    let bytes = match tokio::time::timeout(st.config.timeout, image_bytes(req, &st)).await {
        Ok(Ok(b)) => b,
        Ok(Err(r)) => return r,
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body took too long to arrive",
            );
        }
    };
    let pixels = match image_dimensions(&bytes) {
        Ok((w, h)) => w as u64 * h as u64,
        Err(e) => return error(decode_status(&e), e.to_string()),
    };
    // Over max_pixels, decode_image refuses it at once; within, it takes its share of the
    // pixel budget until the work is done.
    let budget = if pixels > st.config.max_pixels {
        None
    } else {
        let units = pixels.div_ceil(PIXEL_UNIT).min(u32::MAX as u64) as u32;
        match st.pixels.clone().try_acquire_many_owned(units) {
            Ok(b) => Some(b),
            Err(_) => return busy("busy: too many large images at once, retry shortly"),
        }
    };
    let max_pixels = st.config.max_pixels;
    let options = FaceOptions {
        detect: (!q.no_detect).then_some(detect),
        align: !q.no_align,
    };
    let predictor = st.predictor.clone();
    // Decoding too is off the async threads: a 40-megapixel PNG takes seconds, and the
    // threads that accept connections and answer /healthz must not wait for it.
    let work = tokio::task::spawn_blocking(move || {
        // The slot and the pixels stay taken until the work is done, even after a timeout.
        let _taken = (permit, budget);
        let image =
            decode_image(&bytes, max_pixels).map_err(|e| (decode_status(&e), e.to_string()))?;
        drop(bytes);
        // Detection (most of the time) runs for many requests at once; only the network,
        // which is not shareable between threads, is taken in turn.
        let found = find_faces(std::slice::from_ref(&image), &options)
            .map_err(|msg| (StatusCode::BAD_REQUEST, msg))?;
        drop(image);
        let predictor = predictor.lock().unwrap_or_else(|e| e.into_inner());
        Ok(classify_faces(found, &predictor))
    });
    match tokio::time::timeout(st.config.timeout, work).await {
        Err(_) => error(StatusCode::GATEWAY_TIMEOUT, "the prediction took too long"),
        Ok(Err(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, "the prediction failed"),
        Ok(Ok(Err((status, msg)))) => error(status, msg),
        Ok(Ok(Ok(mut preds))) => axum::Json(preds.remove(0).to_json(&st.classes)).into_response(),
    }
}

/// The detector's settings from the query, checked as `ferrite predict` checks its flags.
fn detect_options(q: &PredictQuery) -> Result<DetectOptions, String> {
    let defaults = DetectOptions::default();
    let detect = DetectOptions {
        min_face: q.min_face.unwrap_or(defaults.min_face),
        min_score: q.min_score.unwrap_or(defaults.min_score),
        size: match q.detect_size.as_deref().map(str::parse::<DetectSize>) {
            None => defaults.size,
            Some(Ok(size)) => size,
            Some(Err(e)) => return Err(format!("detect_size: {e}")),
        },
    };
    detect
        .check()
        .map_err(|e| e.replace("--min-score", "min_score"))?;
    Ok(detect)
}

/// Reads what is left of a request's body and drops it, up to the body limit and the request
/// timeout, before an answer that does not need it. An answer sent over an unread body is
/// often lost: the connection cannot carry another request and closes, and a socket closed
/// with unread data is reset by the kernel, which can discard the answer before the client
/// reads it (the "other" failures of the load bench at 64 clients). Read, the connection
/// stays open for the client's next request. A body over the limit or too slow is left,
/// and its connection closes as before.
async fn discard_body(req: Request, st: &AppState) {
    let mut body = req.into_body();
    let mut left = st.config.max_body_bytes;
    let _ = tokio::time::timeout(st.config.timeout, async {
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, |d| d.len());
            if n > left {
                break;
            }
            left -= n;
        }
    })
    .await;
}

/// The image bytes of a request: the multipart field `image`, or the whole body.
async fn image_bytes(req: Request, st: &Arc<AppState>) -> Result<Bytes, Response> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        return Bytes::from_request(req, st).await.map_err(|e| {
            let status = e.status();
            let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("body larger than {} bytes", st.config.max_body_bytes)
            } else {
                e.body_text()
            };
            error(status, msg)
        });
    }
    let mut form = Multipart::from_request(req, st)
        .await
        .map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text()))?;
    loop {
        match form.next_field().await {
            Ok(Some(field)) if field.name() == Some("image") => {
                return field.bytes().await.map_err(|e| {
                    let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        e.status()
                    } else {
                        StatusCode::BAD_REQUEST
                    };
                    error(
                        status,
                        format!("malformed multipart body: {}", e.body_text()),
                    )
                });
            }
            Ok(Some(_)) => continue,
            Ok(None) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "multipart body has no field named `image`",
                ));
            }
            Err(e) => {
                let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    e.status()
                } else {
                    StatusCode::BAD_REQUEST
                };
                return Err(error(
                    status,
                    format!("malformed multipart body: {}", e.body_text()),
                ));
            }
        }
    }
}

/// The status for an upload we cannot decode: an unknown format is 415, anything else wrong
/// with it (too large, corrupt, empty) 422; the size is checked from the header, before any
/// pixel is allocated.
fn decode_status(e: &DecodeError) -> StatusCode {
    match e {
        DecodeError::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// Serves `state` on `listener` until `shutdown` resolves; in-flight requests finish.
///
/// Our own accept loop rather than `axum::serve`, which sets no header timeout and no
/// connection limit: a client that opens a connection and sends nothing would hold it forever.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = TowerToHyperService::new(router(state.clone()));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.config.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    let open = Arc::new(Semaphore::new(state.config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or a connection reset before accept: the listener
                // itself is fine, so wait a moment rather than spin or stop.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            state.metrics.connection("refused");
            let _ = stream.try_write(BUSY);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection =
            graceful.watch(http.serve_connection(TokioIo::new(stream), service.clone()));
        let st = state.clone();
        tokio::spawn(async move {
            let outcome = match connection.await {
                Ok(()) => "closed",
                Err(e) if e.is_timeout() => "header_timeout",
                Err(e) if e.is_parse() || e.is_parse_too_large() => "malformed",
                Err(_) => "broken",
            };
            st.metrics.connection(outcome);
            drop(slot);
        });
    }
    // In-flight requests finish; connections idle in keep-alive close at once.
    graceful.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
