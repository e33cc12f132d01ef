//! `ferrite serve` on loopback: the API's happy path on a real photo and each error.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use common::group_photo;

/// A running `ferrite serve` on a free port, stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start ferrite serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "ferrite serving on http://127.0.0.1:PORT/ (Ctrl-C to stop)"
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .expect(&line)
            .to_string();
        Server { child, addr }
    }

    /// One HTTP/1.1 request; returns (status, headers, body).
    fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        // The server may answer (413) before reading all of a large body.
        let _ = s.write_all(body);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response");
        let headers = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        (status, headers, body)
    }

    fn json(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let (status, _, body) = self.request(method, path, content_type, body);
        (
            status,
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("JSON body: {}", String::from_utf8_lossy(&body))),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: the graceful shutdown path.
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = b.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + size]);
        b = &b[end + 4 + size..];
    }
    out
}

/// A PNG whose header claims 100000 x 100000 pixels (a decompression bomb's calling card),
/// with valid CRCs and no pixel data.
fn bomb_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit gray
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32fast::hash(&ihdr).to_be_bytes());
    // A few bytes of "compressed pixels": a decoder reads the header up to here.
    for (kind, data) in [
        (&b"IDAT"[..], &b"\x78\x9c\x03\x00"[..]),
        (&b"IEND"[..], &b""[..]),
    ] {
        png.extend((data.len() as u32).to_be_bytes());
        let chunk = [kind, data].concat();
        png.extend(&chunk);
        png.extend(crc32fast::hash(&chunk).to_be_bytes());
    }
    png
}

#[test]
fn health_model_page_and_metrics() {
    let server = Server::start(&[]);
    let (status, _, body) = server.request("GET", "/healthz", None, b"");
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let (status, model) = server.json("GET", "/v1/model", None, b"");
    assert_eq!(status, 200);
    assert_eq!(model["source"], "built-in");
    assert_eq!(model["classes"].as_array().unwrap().len(), 7);
    let (status, headers, page) = server.request("GET", "/", None, b"");
    assert_eq!(status, 200);
    assert!(headers.to_ascii_lowercase().contains("text/html"));
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("Start camera") && page.contains("/v1/predict"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );
    let (_, _, metrics) = server.request("GET", "/metrics", None, b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("ferrite_requests_total{route=\"/healthz\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferrite_request_seconds_bucket{route=\"/v1/model\",le=\"+Inf\"} 1"),
        "{metrics}"
    );
}

#[test]
fn predicts_a_real_photo_raw_and_multipart() {
    let Some(photo) = group_photo() else { return };
    let bytes = std::fs::read(photo).unwrap();
    let server = Server::start(&[]);
    let (status, doc) = server.json("POST", "/v1/predict", Some("image/png"), &bytes);
    assert_eq!(status, 200, "{doc}");
    assert_eq!(
        (doc["width"].as_u64(), doc["height"].as_u64()),
        (Some(1666), Some(1136))
    );
    let faces = doc["faces"].as_array().unwrap();
    assert!((27..=31).contains(&faces.len()), "{} faces", faces.len());
    for f in faces {
        let sum: f64 = f["probabilities"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-4);
    }

    let boundary = "ferriteBoundary42";
    let mut form = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"test.png\"\r\nContent-Type: image/png\r\n\r\n").into_bytes();
    form.extend(&bytes);
    form.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (status, multipart) = server.json(
        "POST",
        "/v1/predict",
        Some(&format!("multipart/form-data; boundary={boundary}")),
        &form,
    );
    assert_eq!(status, 200, "{multipart}");
    assert_eq!(multipart, doc, "same image, same answer");
}

#[test]
fn each_bad_request_gets_its_status_and_a_json_error() {
    let server = Server::start(&["--max-body-mb", "1"]);
    // Too large a body.
    let (status, _, body) = server.request(
        "POST",
        "/v1/predict",
        Some("image/png"),
        &vec![0u8; 2 * 1024 * 1024],
    );
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    // Not an image.
    let (status, e) = server.json(
        "POST",
        "/v1/predict",
        Some("text/plain"),
        b"hello, this is text",
    );
    assert_eq!(status, 415);
    assert!(e["error"].as_str().unwrap().contains("not an image"));
    // A decompression bomb: refused from its header.
    let (status, e) = server.json("POST", "/v1/predict", Some("image/png"), &bomb_png());
    assert_eq!(status, 422);
    assert!(
        e["error"].as_str().unwrap().contains("100000x100000"),
        "{e}"
    );
    // Malformed multipart.
    let (status, e) = server.json(
        "POST",
        "/v1/predict",
        Some("multipart/form-data; boundary=xyz"),
        b"--xyz\r\nbroken",
    );
    assert_eq!(status, 400, "{e}");
    // Bad option.
    let (status, _) = server.json(
        "POST",
        "/v1/predict?min_face=5",
        Some("image/png"),
        &bomb_png(),
    );
    assert_eq!(status, 400);
    // The server is still up and counted all of it.
    let (_, _, metrics) = server.request("GET", "/metrics", None, b"");
    let metrics = String::from_utf8(metrics).unwrap();
    for code in ["413", "415", "422", "400"] {
        assert!(
            metrics.contains(&format!("route=\"/v1/predict\",status=\"{code}\"")),
            "{code}: {metrics}"
        );
    }
}
