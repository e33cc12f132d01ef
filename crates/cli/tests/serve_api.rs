//! `ferrite serve` on loopback: the API's happy path on a real photo and each error.

mod common;

use common::group_photo;
use common::server::{Server, bomb_png};

#[test]
fn health_model_page_and_metrics() {
    let server = Server::start(&[]);
    let (status, _, body) = server.request("GET", "/healthz", None, b"");
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let (status, model) = server.json("GET", "/v1/model", None, b"");
    assert_eq!(status, 200);
    assert_eq!(model["source"], "built-in");
    assert_eq!(model["models"], 1);
    assert_eq!(
        model["classes"].as_array().unwrap().len(),
        8,
        "the FERPlus classes"
    );
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
    let photo = group_photo();
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
        "/v1/predict?min_score=5",
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

#[test]
fn a_full_queue_answers_503_with_retry_after_and_recovers() {
    let photo = group_photo();
    let bytes = std::sync::Arc::new(std::fs::read(photo).unwrap());
    let server = std::sync::Arc::new(Server::start(&["--queue", "1"]));
    // Eight clients at once against one slot: some must be turned away, none may fail otherwise.
    let answers: Vec<(u16, String, Vec<u8>)> = (0..8)
        .map(|_| {
            let (server, bytes) = (server.clone(), bytes.clone());
            std::thread::spawn(move || {
                server.request("POST", "/v1/predict", Some("image/png"), &bytes)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let busy: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert_eq!(
        ok + busy.len(),
        8,
        "only 200 or 503: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    assert!(
        ok >= 1 && !busy.is_empty(),
        "{ok} answered, {} turned away",
        busy.len()
    );
    for (_, headers, body) in busy {
        assert!(
            headers.to_ascii_lowercase().contains("retry-after:"),
            "{headers}"
        );
        let e: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert!(e["error"].as_str().unwrap().contains("busy"), "{e}");
    }
    // Once the burst is over, the slot is free again.
    let (status, _) = server.json("POST", "/v1/predict", Some("image/png"), &bytes);
    assert_eq!(status, 200);
}

/// The group photo four times over (3332x2272, 7.6 MP, 116 faces) as JPEG: searched at full
/// size (`detect_size=full`), a request that takes over a second.
fn big_crowd_jpeg() -> Vec<u8> {
    let photo = image::open(group_photo()).unwrap().to_rgb8();
    let (w, h) = photo.dimensions();
    let mut big = image::RgbImage::new(2 * w, 2 * h);
    for (x, y) in [(0, 0), (w, 0), (0, h), (w, h)] {
        image::imageops::replace(&mut big, &photo, x as i64, y as i64);
    }
    let mut jpeg = Vec::new();
    big.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    jpeg
}

const SLOW: &str = "/v1/predict?detect_size=full";

#[test]
fn a_prediction_over_the_timeout_gets_504() {
    let bytes = big_crowd_jpeg();
    // The body arrives in milliseconds; finding and classifying 116 faces takes over a second.
    let server = Server::start(&["--timeout", "0.25"]);
    let (status, e) = server.json("POST", SLOW, Some("image/jpeg"), &bytes);
    assert_eq!(status, 504, "{e}");
    assert!(e["error"].as_str().unwrap().contains("too long"), "{e}");
    let (status, _, _) = server.request("GET", "/healthz", None, b"");
    assert_eq!(status, 200, "still up");
}

#[test]
fn a_body_that_trickles_in_gets_408_and_frees_its_slot() {
    use std::io::{Read, Write};
    let server = Server::start(&["--timeout", "1", "--queue", "1"]);
    // Announce 1000 bytes, send 10, then stall: the one slot must not stay taken.
    let mut slow = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        slow,
        "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n0123456789"
    )
    .unwrap();
    let mut answer = Vec::new();
    slow.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = slow.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("too long to arrive"), "{answer}");
    let (status, _) = server.json("POST", "/v1/predict", Some("image/png"), &bomb_png());
    assert_eq!(status, 422, "the slot is free again");
}

/// Whether a read to the end saw the server close the connection (an end, or a reset when
/// our unread bytes were still in flight), rather than time out.
fn closed(read: std::io::Result<usize>) -> bool {
    match read {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn slow_headers_and_idle_connections_are_closed_after_the_header_timeout() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let server = Server::start(&["--header-timeout", "1"]);
    let idle = std::net::TcpStream::connect(&server.addr).unwrap();
    let mut slow = std::net::TcpStream::connect(&server.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let start = Instant::now();
    // A slowloris client: one more header byte every 200 ms, never the blank line.
    let mut closed_at = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        if slow.write_all(b"X").is_err() {
            closed_at = Some(start.elapsed());
            break;
        }
    }
    // The server closes the connection (hyper may answer 408 first).
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let read = slow.read_to_end(&mut rest);
    let closed_at = closed_at.unwrap_or_else(|| start.elapsed());
    assert!(closed(read), "slow connection not closed");
    assert!(
        closed_at < Duration::from_secs(4),
        "slow connection closed only after {closed_at:?}"
    );
    let mut idle = idle;
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut nothing = Vec::new();
    assert!(
        closed(idle.read_to_end(&mut nothing)),
        "idle connection left open"
    );
    let (status, _, _) = server.request("GET", "/healthz", None, b"");
    assert_eq!(status, 200, "still serving");
    let (_, _, metrics) = server.request("GET", "/metrics", None, b"");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("ferrite_connections_total{outcome=\"header_timeout\"} 2"),
        "{metrics}"
    );
}

#[test]
fn a_connection_over_the_cap_gets_503_and_the_cap_frees_when_clients_leave() {
    use std::io::Read;
    use std::time::Duration;
    let server = Server::start(&["--max-connections", "3", "--header-timeout", "30"]);
    let held: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(&server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200)); // let the server accept all three
    let mut extra = std::net::TcpStream::connect(&server.addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = extra.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let (status, _, _) = server.request("GET", "/healthz", None, b"");
    assert_eq!(status, 200, "slots free again once clients leave");
}

#[test]
fn large_images_at_once_are_bounded_by_the_pixel_budget() {
    let bytes = std::sync::Arc::new(big_crowd_jpeg()); // 3332x2272: 7.6 MP
    let server = std::sync::Arc::new(Server::start(&[
        "--max-megapixels",
        "8",
        "--max-megapixels-in-flight",
        "12",
    ]));
    // The first photo takes over a second (116 faces at full size); a second one at the same
    // time would take the pixels in flight to 15.1 MP.
    let first = {
        let (server, bytes) = (server.clone(), bytes.clone());
        std::thread::spawn(move || server.json("POST", SLOW, Some("image/jpeg"), &bytes))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (status, e) = server.json("POST", SLOW, Some("image/jpeg"), &bytes);
    assert_eq!(status, 503, "{e}");
    assert!(e["error"].as_str().unwrap().contains("large images"), "{e}");
    let (status, first) = first.join().unwrap();
    assert_eq!(status, 200, "{first}");
    // The big one fits again once alone.
    let (status, again) = server.json("POST", SLOW, Some("image/jpeg"), &bytes);
    assert_eq!(
        (status, again["faces"].as_array().map(Vec::len)),
        (200, first["faces"].as_array().map(Vec::len))
    );
}

/// Reads one HTTP/1.1 answer (headers and a Content-Length body) from a keep-alive
/// connection: its status line and body.
fn read_answer(stream: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).expect("an answer, not a reset");
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    while buf.len() < end + length {
        let n = stream.read(&mut chunk).expect("the body, not a reset");
        assert!(n > 0, "closed inside the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (
        head.lines().next().unwrap().to_string(),
        buf[end..end + length].to_vec(),
    )
}

#[test]
fn a_refused_upload_is_read_so_its_answer_arrives_and_the_connection_stays_open() {
    use std::io::Write;
    let bytes = std::sync::Arc::new(big_crowd_jpeg());
    let server = std::sync::Arc::new(Server::start(&["--queue", "1"]));
    // The one slot is taken for over a second.
    let first = {
        let (server, bytes) = (server.clone(), bytes.clone());
        std::thread::spawn(move || server.json("POST", SLOW, Some("image/jpeg"), &bytes))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    // A keep-alive client uploads a photo of over a megabyte: it is turned away, and the
    // server reads the upload rather than closing over it (which resets the connection).
    let mut client = std::net::TcpStream::connect(&server.addr).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    client
        .set_write_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    write!(
        client,
        "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    client.write_all(&bytes).expect("the whole upload is taken");
    let (status, body) = read_answer(&mut client);
    assert_eq!(
        status,
        "HTTP/1.1 503 Service Unavailable",
        "{}",
        String::from_utf8_lossy(&body)
    );
    // The same connection carries the next request.
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (status, body) = read_answer(&mut client);
    assert_eq!(
        (status.as_str(), body.as_slice()),
        ("HTTP/1.1 200 OK", &b"ok\n"[..])
    );
    assert_eq!(first.join().unwrap().0, 200);
    // So does a bad option, answered before the body is needed.
    write!(
        client,
        "POST /v1/predict?min_score=5 HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    client.write_all(&bytes).unwrap();
    let (status, _) = read_answer(&mut client);
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut client).0, "HTTP/1.1 200 OK");
}
