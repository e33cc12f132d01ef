//! `ferrite serve` under load on loopback: requests/s and latency at 1, 8 and 64 concurrent
//! clients posting a 640x480 one-face JPEG, the outcome counts (200, 503 when the queue is
//! full), and the server's resident memory.
//!
//! `cargo bench -p ferrite --bench serve_load [-- SECONDS [QUEUE]]` (defaults: 10 s per level,
//! the server's default queue of 16). Client and server share this machine's cores.

#[path = "../../infer/benches/fixtures/mod.rs"]
mod fixtures;
#[allow(dead_code)] // the plain client is for the tests; here hyper's pooled client is used
#[path = "../tests/common/server.rs"]
mod server;

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use server::Server;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// One POST; returns its status (0: no answer) and latency.
async fn post(client: &HttpClient, uri: &str, jpeg: &Bytes) -> (u16, Duration) {
    let start = Instant::now();
    let request = hyper::Request::post(uri)
        .header("content-type", "image/jpeg")
        .body(Full::new(jpeg.clone()))
        .unwrap();
    let status = match client.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.into_body().collect().await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        Err(_) => 0, // connection refused or reset
    };
    (status, start.elapsed())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let numbers: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = numbers.first().copied().unwrap_or(10.0);
    let queue = numbers.get(1).map_or(16, |q| *q as usize);
    let jpeg = fixtures::portrait_jpeg();
    let jpeg = Bytes::from(jpeg);
    let server = Server::start(&["--queue", &queue.to_string()]);
    let uri = format!("http://{}/v1/predict", server.addr);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let (status, _) = post(&client, &uri, &jpeg).await;
    assert_eq!(status, 200, "warm-up request");
    let idle_rss = server.status_kib("VmRSS").unwrap_or(0);

    println!(
        "640x480 JPEG ({} KiB, one face), {seconds} s per level, server queue {queue}, \
         server RSS after one request {:.0} MiB",
        jpeg.len() / 1024,
        idle_rss as f64 / 1024.0
    );
    println!(
        "| clients | requests | 200 | 503 | other | answered/s | p50 ms (200) | p99 ms (200) | \
         p50 ms (503) | RSS after MiB | peak RSS MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for clients in [1, 8, 64] {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, uri, jpeg) = (client.clone(), uri.clone(), jpeg.clone());
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    while Instant::now() < deadline {
                        seen.push(post(&client, &uri, &jpeg).await);
                    }
                    seen
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.extend(t.await.unwrap());
        }
        let elapsed = start.elapsed().as_secs_f64();
        let ms = |code: u16| {
            let mut v: Vec<f64> = results
                .iter()
                .filter(|r| r.0 == code)
                .map(|r| r.1.as_secs_f64() * 1e3)
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (ok, busy) = (ms(200), ms(503));
        println!(
            "| {clients} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} |",
            results.len(),
            ok.len(),
            busy.len(),
            results.len() - ok.len() - busy.len(),
            ok.len() as f64 / elapsed,
            percentile(&ok, 0.5),
            percentile(&ok, 0.99),
            percentile(&busy, 0.5),
            server.status_kib("VmRSS").unwrap_or(0) as f64 / 1024.0,
            server.status_kib("VmHWM").unwrap_or(0) as f64 / 1024.0,
        );
    }
}
