//! Box proposals from a VLM (`thyme-studio assist find`) against a chat server on loopback
//! that answers like Qwen2.5-VL: `bbox_2d` in the pixels of its resized input. The server
//! decodes each tile it is sent, so the tiles' native resolution is checked too.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;

#[path = "support/chat.rs"]
mod chat;

/// The tile sizes a server was sent.
type Seen = Arc<Mutex<Vec<(u32, u32)>>>;

/// Answers every request with `answer(tile width, tile height)`; keeps the tile sizes seen.
fn server(answer: fn(u32, u32) -> String) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut s = conn.unwrap();
            let log = log.clone();
            std::thread::spawn(move || {
                let v = chat::read_body(&mut s);
                let url = v["messages"][0]["content"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find_map(|p| p["image_url"]["url"].as_str())
                    .unwrap()
                    .to_owned();
                let b64 = url.split_once("base64,").unwrap().1;
                let png = thyme_studio::base64::decode(b64).unwrap();
                let tile = image::load_from_memory(&png).unwrap();
                log.lock().unwrap().push((tile.width(), tile.height()));
                let text = answer(tile.width(), tile.height());
                chat::reply(&mut s, &text);
            });
        }
    });
    (port, seen)
}

fn find(image: &std::path::Path, port: u16, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["assist", "find"])
        .arg(image)
        .args(["--text", "red sign", "--json"])
        .arg("--base-url")
        .arg(format!("http://127.0.0.1:{port}/v1"))
        .args(extra)
        .output()
        .unwrap()
}

fn picture(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("street.png");
    image::RgbImage::from_fn(3000, 2000, |x, y| image::Rgb([x as u8, y as u8, 60]))
        .save(&path)
        .unwrap();
    path
}

#[test]
fn a_box_in_the_models_resized_pixels_lands_exactly_on_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let image = picture(dir.path());
    // One tile, the whole 3000x2000 picture, which a processor with max_pixels 1003520
    // resizes to 1204x812: the model's box there is (300, 200)-(600, 400) on the original.
    let (port, seen) = server(|w, h| {
        assert_eq!(
            (w, h),
            (3000, 2000),
            "the tile is sent at native resolution"
        );
        "```json\n[{\"bbox_2d\": [120.4, 81.2, 240.8, 162.4], \"label\": \"red sign\"}]\n```".into()
    });
    let out = find(&image, port, &["--tile", "4000", "--max-pixels", "1003520"]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["proposals"][0]["rect"];
    let got = [&r["x0"], &r["y0"], &r["x1"], &r["y1"]].map(|x| x.as_f64().unwrap());
    for (a, b) in got.iter().zip([300.0, 200.0, 600.0, 400.0]) {
        assert!((a - b).abs() < 1e-9, "{got:?}");
    }
    assert_eq!(v["proposals"][0]["label"], "red sign");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn every_tile_is_asked_and_each_box_is_placed_by_its_own_tile() {
    let dir = tempfile::tempdir().unwrap();
    let image = picture(dir.path());
    // 12 tiles of 1000x1000 (steps of 900, the last row and column kept on the image), each
    // answering a box at its top left.
    let (port, seen) = server(|w, h| {
        assert_eq!((w, h), (1000, 1000));
        "[{\"bbox_2d\": [28, 28, 84, 84], \"label\": \"red sign\"}]".into()
    });
    let out = find(&image, port, &["--tile", "1000"]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tiles"], 12);
    assert_eq!(seen.lock().unwrap().len(), 12);
    // 1000x1000 is resized to 1008x1008: (28, 28)-(84, 84) is 27.78-83.33 in the tile.
    let proposals = v["proposals"].as_array().unwrap();
    assert_eq!(proposals.len(), 12);
    let first = &proposals[0]["rect"];
    assert!((first["x0"].as_f64().unwrap() - 28.0 * 1000.0 / 1008.0).abs() < 1e-9);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn an_answer_without_boxes_is_named_per_tile_and_nothing_is_proposed() {
    let dir = tempfile::tempdir().unwrap();
    let image = picture(dir.path());
    let (port, _) = server(|_, _| "I cannot tell.".into());
    let out = find(&image, port, &["--tile", "2000"]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["proposals"].as_array().unwrap().is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tile 1: no JSON in the answer: I cannot tell."),
        "{stderr}"
    );
}
