//! The web page of `ferrite serve` in a real browser: headless Chromium driven over WebDriver
//! (chromedriver) uploads the group photo and must show a box and emotion bars for each face
//! the API finds; the webcam path runs on Chromium's fake camera; the page must fit a phone.
//!
//! Needs `chromium` and `chromedriver` on PATH (Debian packages `chromium`, `chromium-driver`;
//! `.ci/run` installs them). Without them the test says it was skipped, unless
//! `FERRITE_REQUIRE_BROWSER=1` (CI), where that is a failure.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::group_photo;
use common::server::Server;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// `name` on PATH, or `None` (said) when absent; a failure under `FERRITE_REQUIRE_BROWSER=1`.
fn program(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("FERRITE_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("{name} is not on PATH and FERRITE_REQUIRE_BROWSER=1");
        }
        eprintln!("SKIPPED: {name} not on PATH (apt install chromium chromium-driver)");
    }
    found
}

/// A chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(chromedriver: &PathBuf) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, chromium: &PathBuf, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1100,900",
                // A synthetic camera, allowed without a prompt: the webcam path end to end.
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            ]
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in headless Chromium")
}

/// Evaluates `script` (a function body that returns a value) in the page.
async fn eval(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.expect(script)
}

/// Polls `script` until it returns `true`, failing with `what` after `secs` seconds.
async fn wait_until(client: &Client, script: &str, secs: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while eval(client, script).await != Value::Bool(true) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_boxes_and_bars_for_a_photo_and_runs_the_camera() {
    let (Some(chromium), Some(chromedriver)) = (program("chromium"), program("chromedriver"))
    else {
        return;
    };
    let photo = group_photo();
    let server = Server::start(&[]);
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, &chromium, profile.path()).await;

    client
        .goto(&format!("http://{}/", server.addr))
        .await
        .unwrap();
    wait_until(
        &client,
        r#"return document.getElementById("model").textContent.startsWith("model: ferrite");"#,
        20,
        "the model line",
    )
    .await;

    // Upload through the real file input, as a click on the drop zone would.
    client
        .find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(photo.to_str().unwrap())
        .await
        .unwrap();
    wait_until(
        &client,
        r#"return document.getElementById("status").textContent.includes("face(s) in");"#,
        120,
        "the faces of the photo",
    )
    .await;

    // What the API says about the same photo is what the page must show.
    let bytes = std::fs::read(&photo).unwrap();
    let (status, api) = server.json("POST", "/v1/predict", Some("image/png"), &bytes);
    assert_eq!(status, 200);
    let faces = api["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 29);
    let classes = faces[0]["probabilities"].as_object().unwrap().len();
    let first = &faces[0]["box"];
    let [x, y, h] = ["x", "y", "height"].map(|k| first[k].as_f64().unwrap().round() as u64);

    let page = eval(
        &client,
        &format!(
            r##"
        const overlay = document.getElementById("overlay");
        const px = overlay.getContext("2d").getImageData(0, 0, overlay.width, overlay.height).data;
        let painted = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
        const edge = overlay.getContext("2d").getImageData({x}, {mid}, 1, 1).data;
        return {{
            faces: document.querySelectorAll("#faces .face").length,
            bars: document.querySelectorAll("#faces .face .bar").length,
            heading: document.querySelector("#faces .face h3").textContent,
            // As drawn: each bar's filled share of its track, in percent.
            fills: [...document.querySelectorAll("#faces .face:first-child .fill")]
                .map((f) => 100 * f.getBoundingClientRect().width /
                            f.parentElement.getBoundingClientRect().width),
            overlay: [overlay.width, overlay.height],
            painted: painted / (overlay.width * overlay.height),
            edge_alpha: edge[3],
            picture_shown: !document.getElementById("picture").hidden,
        }};"##,
            mid = y + h / 2
        ),
    )
    .await;
    assert_eq!(page["faces"], faces.len(), "{page}");
    assert_eq!(page["bars"], faces.len() * classes, "{page}");
    assert_eq!(
        page["heading"],
        format!("Face 1: {}", faces[0]["emotion"].as_str().unwrap())
    );
    // Bars sorted from the most to the least likely, summing to ~100 %.
    let fills: Vec<f64> = page["fills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(fills.windows(2).all(|w| w[0] >= w[1]), "{fills:?}");
    assert!((fills.iter().sum::<f64>() - 100.0).abs() < 2.0, "{fills:?}");
    // The boxes are drawn over the photo at its own resolution, at the API's coordinates.
    assert_eq!(page["overlay"], json!([1666, 1136]));
    assert_eq!(page["edge_alpha"], 255, "no box edge at x={x}: {page}");
    let painted = page["painted"].as_f64().unwrap();
    assert!(painted > 0.01 && painted < 0.5, "{page}");
    assert_eq!(page["picture_shown"], true);

    let png = client.screenshot().await.unwrap();
    let shot = image::load_from_memory(&png).expect("a PNG screenshot");
    assert!(shot.width() >= 1000, "{}x{}", shot.width(), shot.height());
    let saved = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-page.png");
    std::fs::write(&saved, &png).unwrap();
    eprintln!("screenshot: {}", saved.display());

    // The webcam: frames of the fake camera go to the API and come back ("Live").
    client
        .find(Locator::Id("camera"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &client,
        r#"return document.getElementById("status").textContent === "Live";"#,
        60,
        "live predictions on the camera",
    )
    .await;
    let camera = client.find(Locator::Id("camera")).await.unwrap();
    assert_eq!(camera.text().await.unwrap(), "Stop camera");
    camera.click().await.unwrap();
    assert_eq!(camera.text().await.unwrap(), "Start camera");

    // A phone-sized window: nothing wider than the screen.
    client.set_window_size(390, 844).await.unwrap();
    let overflow = eval(
        &client,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    )
    .await;
    assert_eq!(overflow, 0, "the page scrolls sideways on a phone");

    client.close().await.unwrap();
}
