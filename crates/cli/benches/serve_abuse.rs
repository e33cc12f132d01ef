//! `ferrite serve` under abuse on loopback, with its default limits: oversized bodies, slow
//! ("slowloris") and idle clients below and past the connection cap, thousands of malformed
//! requests, decompression bombs, the largest images it accepts, and load past the queue.
//!
//! Throughout, a canary posts a 640x480 one-face JPEG on a fresh connection every 250 ms:
//! what a well-formed client sees during each phase. Prints, per phase, the count of each
//! outcome (HTTP status; 0 = closed without an answer), the canary's results and the
//! server's memory; at the end, the server's own connection counts from /metrics.
//!
//! `cargo bench -p ferrite --bench serve_abuse` (about 80 s). Client and server share this
//! machine's cores.

#[path = "../../infer/benches/fixtures/mod.rs"]
mod fixtures;
#[allow(dead_code)] // the blocking client is for the tests; here raw async sockets are used
#[path = "../tests/common/server.rs"]
mod server;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use server::{Server, bomb_png};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest any client here waits for an answer; the server's header timeout is 10 s.
const PATIENCE: Duration = Duration::from_secs(20);

/// Sends `request` on a new connection and returns the status of the answer (0: the server
/// closed or reset the connection without one, or none came within PATIENCE).
async fn exchange(addr: &str, request: &[u8]) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return 0;
    };
    // The server may answer (413, 400) before reading everything we send.
    let _ = s.write_all(request).await;
    read_status(&mut s).await
}

/// Reads until the end of an answer's head and returns its status (0: none).
async fn read_status(s: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(PATIENCE, read).await;
    std::str::from_utf8(&head)
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// A complete request with a body, closing the connection after the answer.
fn request(method: &str, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Outcome counts of one phase, by status.
#[derive(Default)]
struct Counts(Mutex<BTreeMap<u16, usize>>);

impl Counts {
    fn add(&self, status: u16) {
        *self.0.lock().unwrap().entry(status).or_default() += 1;
    }
    fn show(&self) -> String {
        let counts = self.0.lock().unwrap();
        let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        parts.join(", ")
    }
}

/// Runs `requests` with `clients` concurrent connections; counts the statuses.
async fn flood(addr: &str, requests: Vec<Vec<u8>>, clients: usize) -> Counts {
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let counts = Arc::new(Counts::default());
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (requests, next, counts, addr) = (
                requests.clone(),
                next.clone(),
                counts.clone(),
                addr.to_string(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(r) = requests.get(i) else { break };
                    counts.add(exchange(&addr, r).await);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    Arc::into_inner(counts).unwrap()
}

/// `n` clients that open a connection, send a request line and then one header byte per
/// second, never finishing. Returns how each ended (a status, or 0 when the server closed
/// without one) and how many were still open when we gave up after `hold`.
async fn slowloris(addr: &str, n: usize, hold: Duration) -> (Counts, usize) {
    let counts = Arc::new(Counts::default());
    let still_open = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let (counts, still_open, addr) = (counts.clone(), still_open.clone(), addr.to_string());
            tokio::spawn(async move {
                let Ok(mut s) = TcpStream::connect(&addr).await else {
                    counts.add(0);
                    return;
                };
                let _ = s
                    .write_all(b"POST /v1/predict HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
                    .await;
                let start = Instant::now();
                let mut buf = [0u8; 512];
                while start.elapsed() < hold {
                    // Either the server says something / closes, or a second passes.
                    match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => {
                            counts.add(0);
                            return;
                        }
                        Ok(Ok(_)) => {
                            let head = String::from_utf8_lossy(&buf);
                            let status = head.split(' ').nth(1).and_then(|c| c.parse().ok());
                            counts.add(status.unwrap_or(0));
                            return;
                        }
                        Err(_) => {
                            if s.write_all(b"x").await.is_err() {
                                counts.add(0);
                                return;
                            }
                        }
                    }
                }
                still_open.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let open = still_open.load(Ordering::Relaxed);
    (Arc::into_inner(counts).unwrap(), open)
}

/// The canary: results (status, latency) of one well-formed request every 250 ms, by phase.
type Canary = Arc<Mutex<Vec<(usize, u16, Duration)>>>;

fn canary_summary(canary: &Canary, phase: usize) -> String {
    let seen: Vec<_> = canary
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.0 == phase)
        .map(|c| (c.1, c.2))
        .collect();
    let mut ok: Vec<f64> = seen
        .iter()
        .filter(|s| s.0 == 200)
        .map(|s| s.1.as_secs_f64() * 1e3)
        .collect();
    ok.sort_by(f64::total_cmp);
    let median = ok
        .get(ok.len() / 2)
        .map_or("-".into(), |m| format!("{m:.0} ms"));
    let others = Counts::default();
    seen.iter()
        .filter(|s| s.0 != 200)
        .for_each(|s| others.add(s.0));
    let others = others.show();
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(" (others {others})")
    };
    format!(
        "{}/{} answered 200, median {median}{others}",
        ok.len(),
        seen.len()
    )
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(image::GrayImage::new(width, height))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// Requests wrong in every way we could think of, each with a name.
fn malformed(jpeg: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let truncated = &jpeg[..jpeg.len() / 3];
    vec![
        ("binary garbage", b"\x00\x01\x02garbage\xff\xfe\r\n\r\n".to_vec()),
        ("request line without path", b"GET\r\n\r\n".to_vec()),
        ("unknown method", b"BREW /v1/predict HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("HTTP/9.9", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n".to_vec()),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("header without colon", b"GET / HTTP/1.1\r\nno colon here\r\n\r\n".to_vec()),
        (
            "200 KB header",
            format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(200_000))
                .into_bytes(),
        ),
        (
            "Content-Length: abc",
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(),
        ),
        (
            "two Content-Lengths",
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\nhello"
                .to_vec(),
        ),
        (
            "bad chunk size",
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n"
                .to_vec(),
        ),
        ("JSON body", request("POST", "/v1/predict", "application/json", b"{\"image\": 1}")),
        ("JPEG cut to a third", request("POST", "/v1/predict", "image/jpeg", truncated)),
        (
            "PNG signature, then junk",
            request("POST", "/v1/predict", "image/png", b"\x89PNG\r\n\x1a\nnot really"),
        ),
        (
            "unterminated multipart",
            request(
                "POST",
                "/v1/predict",
                "multipart/form-data; boundary=XX",
                b"--XX\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc",
            ),
        ),
        ("min_face=-5", request("POST", "/v1/predict?min_face=-5", "image/jpeg", jpeg)),
        ("GET /v1/predict", request("GET", "/v1/predict", "text/plain", b"")),
        ("GET /../../etc/passwd", request("GET", "/../../etc/passwd", "text/plain", b"")),
        ("DELETE /v1/model", request("DELETE", "/v1/model", "text/plain", b"")),
    ]
}

#[tokio::main]
async fn main() {
    let jpeg = fixtures::portrait_jpeg();
    let server = Server::start(&[]);
    let addr = server.addr.clone();
    let good = request("POST", "/v1/predict", "image/jpeg", &jpeg);
    assert_eq!(exchange(&addr, &good).await, 200, "warm-up request");
    println!(
        "server with default limits (body 10 MB, 40 MP, queue 16, header timeout 10 s, \
         512 connections); RSS after one request {:.0} MiB",
        server.status_kib("VmRSS").unwrap_or(0) as f64 / 1024.0
    );

    let phase = Arc::new(AtomicUsize::new(0));
    let canary: Canary = Arc::default();
    let canary_task = {
        let (phase, canary, addr, good) =
            (phase.clone(), canary.clone(), addr.clone(), good.clone());
        tokio::spawn(async move {
            loop {
                let p = phase.load(Ordering::Relaxed);
                let start = Instant::now();
                let status = exchange(&addr, &good).await;
                canary.lock().unwrap().push((p, status, start.elapsed()));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    println!(
        "| phase | what was sent | outcomes (status: count; 0 = closed, no answer) | canary | RSS after MiB | peak RSS MiB |"
    );
    println!("|---|---|---|---|---:|---:|");
    let report = |n: usize, name: &str, sent: String, outcomes: String| {
        println!(
            "| {n} {name} | {sent} | {outcomes} | {} | {:.0} | {:.0} |",
            canary_summary(&canary, n),
            server.status_kib("VmRSS").unwrap_or(0) as f64 / 1024.0,
            server.status_kib("VmHWM").unwrap_or(0) as f64 / 1024.0,
        );
    };

    phase.store(1, Ordering::Relaxed);
    let mut announced = format!(
        "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
        64 * 1024 * 1024
    )
    .into_bytes();
    announced.extend(vec![0u8; 64 * 1024]);
    // No length announced: the limit must stop the stream itself.
    let mut chunked =
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..11 {
        chunked.extend(b"100000\r\n");
        chunked.extend(vec![0u8; 0x100000]);
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    let mut oversized = vec![announced; 480];
    oversized.extend(vec![chunked; 20]);
    let counts = flood(&addr, oversized, 16).await;
    report(
        1,
        "oversized bodies",
        "480 announcing 64 MB (64 KB sent) + 20 streaming 11 MB chunked, 16 at a time".into(),
        counts.show(),
    );

    phase.store(2, Ordering::Relaxed);
    let (counts, open) = slowloris(&addr, 400, Duration::from_secs(15)).await;
    report(
        2,
        "slowloris, below the cap",
        "400 connections, 1 header byte/s".into(),
        format!("{}; still open after 15 s: {open}", counts.show()),
    );

    phase.store(3, Ordering::Relaxed);
    let (counts, open) = slowloris(&addr, 2000, Duration::from_secs(15)).await;
    report(
        3,
        "slowloris, past the cap",
        "2000 connections, 1 header byte/s".into(),
        format!("{}; still open after 15 s: {open}", counts.show()),
    );

    phase.store(4, Ordering::Relaxed);
    let idle: Vec<_> = open_idle(&addr, 400).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut closed = 0;
    for mut s in idle {
        if matches!(
            tokio::time::timeout(Duration::from_millis(10), s.read(&mut [0u8; 1])).await,
            Ok(Ok(0) | Err(_))
        ) {
            closed += 1;
        }
    }
    report(
        4,
        "idle connections",
        "400 connections that send nothing, 12 s".into(),
        format!("closed by the server: {closed}"),
    );

    phase.store(5, Ordering::Relaxed);
    let kinds = malformed(&jpeg);
    let mut by_kind = Vec::new();
    for (name, r) in &kinds {
        by_kind.push((name, flood(&addr, vec![r.clone(); 280], 32).await.show()));
    }
    report(
        5,
        "malformed requests",
        format!("{} kinds x 280, 32 at a time (by kind below)", kinds.len()),
        String::new(),
    );

    phase.store(6, Ordering::Relaxed);
    let bomb = request("POST", "/v1/predict", "image/png", &bomb_png());
    let counts = flood(&addr, vec![bomb; 1000], 16).await;
    report(
        6,
        "decompression bombs",
        "1000 PNGs claiming 100000x100000 px".into(),
        counts.show(),
    );

    phase.store(7, Ordering::Relaxed);
    let largest = request("POST", "/v1/predict", "image/png", &png(6300, 6300));
    let counts = flood(&addr, vec![largest; 32], 16).await;
    report(
        7,
        "largest accepted images",
        "32 blank 6300x6300 PNGs (39.7 MP), 16 at a time".into(),
        counts.show(),
    );

    phase.store(8, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    let counts = Arc::new(Counts::default());
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let (counts, addr, good) = (counts.clone(), addr.clone(), good.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    counts.add(exchange(&addr, &good).await);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    report(
        8,
        "past the queue",
        "64 clients posting the photo for 10 s (queue 16)".into(),
        counts.show(),
    );

    phase.store(9, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    canary_task.abort();
    report(9, "after", "nothing for 3 s".into(), String::new());

    let Ok(mut s) = TcpStream::connect(&addr).await else {
        panic!("the server is down")
    };
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    println!("\nmalformed requests, by kind (status: count):\n\n| request | outcomes |\n|---|---|");
    for (name, outcomes) in by_kind {
        println!("| {name} | {outcomes} |");
    }
    println!("\nserver's counts (/metrics):");
    for line in text.lines().filter(|l| {
        l.starts_with("ferrite_connections_total") || l.starts_with("ferrite_requests_total")
    }) {
        println!("  {line}");
    }
}

/// `n` connections opened and left silent.
async fn open_idle(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::new();
    for _ in 0..n {
        if let Ok(s) = TcpStream::connect(addr).await {
            out.push(s);
        }
    }
    out
}
