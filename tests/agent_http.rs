//! The Http policy against a small chat server started on loopback: it checks each request's
//! shape (model, messages, data-URL images, continuing the open assistant turn, stop strings,
//! streaming) and replays streamed chunks, while the sandbox really runs the code.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::channel;
use std::time::Duration;

use serde_json::Value;
use thyme_studio::agent::{Agent, Event, Http, HttpSettings, PromptProfile, Settings, Task};
use thyme_studio::geometry::ImageSize;
use thyme_studio::paths::AppDirs;
use thyme_studio::sandbox::{Runtime, Sandbox, SandboxConfig};

/// Read one HTTP request: the request line, the headers, the body (by Content-Length).
fn read_request(stream: &mut std::net::TcpStream) -> (String, Vec<(String, String)>, Value) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let request_line = line.trim().to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).unwrap();
    (
        request_line,
        headers,
        serde_json::from_slice(&body).unwrap(),
    )
}

/// Answer with server-sent events, one chunk per piece, then [DONE].
fn stream_back(stream: &mut std::net::TcpStream, pieces: &[&str]) {
    let mut out = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
    );
    for (i, p) in pieces.iter().enumerate() {
        let finish = if i + 1 == pieces.len() {
            Value::from("stop")
        } else {
            Value::Null
        };
        let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": finish}]});
        out.push_str(&format!("data: {chunk}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    stream.write_all(out.as_bytes()).unwrap();
}

#[test]
fn the_http_policy_speaks_the_chat_wire_format_and_continues_the_open_turn() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("photo.png");
    image::RgbImage::from_fn(2496, 1392, |x, y| {
        image::Rgb([(x / 10) as u8, (y / 6) as u8, 90])
    })
    .save(&image)
    .unwrap();
    let runtime = Runtime::at(AppDirs::for_user().sandbox_runtime());
    assert!(
        runtime.installed().is_some(),
        "run `bash scripts/test` first"
    );
    let cfg = SandboxConfig::new(
        runtime,
        dir.path().join("runs"),
        PathBuf::from(env!("CARGO_BIN_EXE_thyme-studio")),
    );

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = channel();
    let server = std::thread::spawn(move || {
        // 1: the first segment, ending at </code>.
        let (mut s, _) = listener.accept().unwrap();
        let first = read_request(&mut s);
        stream_back(
            &mut s,
            &[
                "<think>The sign is small.</think><code>\n```python\n",
                "c = Image.open(image_path).crop((1250, 1030, 1360, 1070))\nc = c.resize((c.width * 2, c.height * 2))\n",
                "c.save('/mnt/data/temp_processed_images/z.png')\nprint('/mnt/data/temp_processed_images/z.png')\n```\n</code>",
            ],
        );
        drop(s);
        // 2: the answer; this server leaves the stop string out, as some do.
        let (mut s, _) = listener.accept().unwrap();
        let second = read_request(&mut s);
        stream_back(&mut s, &["<think>It reads ML4.</think> ", "<answer>ML4"]);
        tx.send((first, second)).unwrap();
    });

    let policy = Http::new(HttpSettings {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        model: "Thyme-RL".into(),
        api_key: Some("secret-key".into()),
        timeout: Duration::from_secs(30),
        ca_file: None,
        problem: None,
    });
    let mut agent = Agent::new(
        Box::new(policy),
        Sandbox::start(cfg).unwrap(),
        PromptProfile::default(),
        Settings::default(),
        Task {
            image: image.clone(),
            size: ImageSize::new(2496, 1392),
            question: "What is written on the sign?".into(),
            ground_truth: Some("ML4".into()),
        },
    );
    let mut streamed = Vec::new();
    let cancel = AtomicBool::new(false);
    let e = agent.step(&mut |t| streamed.push(t.to_owned()), &cancel);
    assert!(
        matches!(e, Event::Generated { ref stop, .. } if stop.as_deref() == Some("</code>")),
        "{e:?}"
    );
    assert_eq!(streamed.len(), 3, "the text arrived in the server's chunks");
    assert_eq!(
        agent.step(&mut |_| {}, &cancel),
        Event::Executed {
            ok: true,
            images: 1
        }
    );
    assert_eq!(
        agent.step(&mut |_| {}, &cancel),
        Event::Answered {
            answer: "ML4".into()
        }
    );
    let trace = agent.close();
    assert_eq!(trace.run.outcome, thyme_studio::trace::Outcome::Correct);
    assert!(trace.run.model.as_deref().unwrap().contains("Thyme-RL"));

    let ((line1, headers1, body1), (_, _, body2)) = rx.recv().unwrap();
    server.join().unwrap();
    assert_eq!(line1, "POST /v1/chat/completions HTTP/1.1");
    assert!(headers1.contains(&("authorization".into(), "Bearer secret-key".into())));
    assert_eq!(body1["model"], "Thyme-RL");
    assert_eq!(body1["stream"], true);
    assert_eq!(body1["stop"], serde_json::json!(["</code>", "</answer>"]));
    assert_eq!(body1["add_generation_prompt"], true);
    assert_eq!(body1["continue_final_message"], false);
    let msgs = body1["messages"].as_array().unwrap();
    assert_eq!(
        msgs.iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["system", "user"]
    );
    let user = msgs[1]["content"].as_array().unwrap();
    assert!(
        user[0]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBOR")
    );
    assert!(
        user[1]["text"]
            .as_str()
            .unwrap()
            .contains("### User Image Size:** \"2496x1392\"")
    );
    // The second request continues the open assistant turn, with the crop as an image.
    assert_eq!(body2["continue_final_message"], true);
    assert_eq!(body2["add_generation_prompt"], false);
    let msgs = body2["messages"].as_array().unwrap();
    let assistant = msgs.last().unwrap();
    assert_eq!(assistant["role"], "assistant");
    let parts = assistant["content"].as_array().unwrap();
    assert!(
        parts[0]["text"]
            .as_str()
            .unwrap()
            .ends_with("</code><sandbox_output>")
    );
    assert!(
        parts[1]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(parts[2]["text"], "</sandbox_output>");
}

#[test]
fn a_server_error_is_reported_not_panicked_on() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = read_request(&mut s);
        s.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 11\r\nConnection: close\r\n\r\nmodel crash")
            .unwrap();
    });
    let mut policy = Http::new(HttpSettings {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        model: "m".into(),
        api_key: None,
        timeout: Duration::from_secs(10),
        ca_file: None,
        problem: None,
    });
    let request = thyme_studio::agent::Request {
        system: String::new(),
        user: "hi".into(),
        images: vec![],
        assistant: String::new(),
        stop: vec!["</answer>".into()],
        max_tokens: 16,
        temperature: 0.0,
        seed: None,
    };
    use thyme_studio::agent::Policy;
    let e = policy
        .generate(&request, &mut |_| {}, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(e.contains("HTTP 500") && e.contains("model crash"), "{e}");
}

/// `thyme-studio run --batch` with `--policy http`: several requests are in flight at once
/// (the server holds each answer until a second request is open, or gives up after a while),
/// every row's trace lands in the JSONL, and the accuracy is printed.
#[test]
fn a_batch_keeps_several_requests_in_flight_and_reports_accuracy() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    let dir = tempfile::tempdir().unwrap();
    image::RgbImage::from_fn(64, 48, |x, _| image::Rgb([x as u8 * 3, 20, 200]))
        .save(dir.path().join("dots.png"))
        .unwrap();
    let rows = [
        r#"{"image": "dots.png", "question": "How many dots?", "answer": "7", "category": "counting", "bbox": [[4, 4, 20, 16]]}"#,
        r#"{"image": "dots.png", "question": "How many blue dots?", "solution": "<answer>\\boxed{7}</answer>", "category": "counting"}"#,
        r#"{"image": "dots.png", "question": "How many red dots?", "answer": "8"}"#,
        r#"{"image": "nowhere.png", "question": "Lost?"}"#,
    ];
    let batch = dir.path().join("batch.jsonl");
    std::fs::write(&batch, rows.join("\n")).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // (open requests, most open at once)
    let open = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new()));
    let served = Arc::new(AtomicUsize::new(0));
    let (open2, served2) = (open.clone(), served.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut s = conn.unwrap();
            let (open, served) = (open2.clone(), served2.clone());
            std::thread::spawn(move || {
                let (_, _, body) = read_request(&mut s);
                assert_eq!(body["model"], "batch-model");
                let (lock, cv) = &*open;
                let mut g = lock.lock().unwrap();
                g.0 += 1;
                g.1 = g.1.max(g.0);
                cv.notify_all();
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while g.1 < 2 && std::time::Instant::now() < deadline {
                    g = cv.wait_timeout(g, Duration::from_millis(50)).unwrap().0;
                }
                drop(g);
                stream_back(
                    &mut s,
                    &["<think>I count them.</think> ", "<answer>7</answer>"],
                );
                lock.lock().unwrap().0 -= 1;
                served.fetch_add(1, Ordering::SeqCst);
            });
        }
    });

    let out = dir.path().join("traces.jsonl");
    let result = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args([
            "run",
            "--policy",
            "http",
            "--model",
            "batch-model",
            "--jobs",
            "3",
        ])
        .arg("--base-url")
        .arg(format!("http://127.0.0.1:{port}/v1"))
        .arg("--batch")
        .arg(&batch)
        .arg("--out")
        .arg(&out)
        .arg("--runs")
        .arg(dir.path().join("runs"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("line 4") && stderr.contains("nowhere.png"),
        "{stderr}"
    );
    assert!(stdout.contains("3 task(s)"), "{stdout}");
    assert!(stdout.contains("2 correct, 1 wrong"), "{stdout}");
    assert!(stdout.contains("accuracy: 66.7 % (2 of 3"), "{stdout}");
    assert_eq!(served.load(Ordering::SeqCst), 3);
    assert!(
        open.0.lock().unwrap().1 >= 2,
        "the batch never had two requests open at once"
    );
    let traces: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(traces.len(), 3);
    // In input order, whatever order they finished in.
    let questions: Vec<&str> = traces
        .iter()
        .map(|t| t["run"]["question"].as_str().unwrap())
        .collect();
    assert_eq!(
        questions,
        [
            "How many dots?",
            "How many blue dots?",
            "How many red dots?"
        ]
    );
    // Each run keeps its row's category and target boxes, and the statistics group by them.
    assert_eq!(traces[0]["run"]["category"], "counting");
    assert_eq!(
        traces[0]["run"]["targets"],
        serde_json::json!([[4.0, 4.0, 20.0, 16.0]])
    );
    assert!(traces[2]["run"].get("category").is_none());
    let stats = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["trace", "stats", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(stats.status.success(), "{stats:?}");
    let v: Value = serde_json::from_slice(&stats.stdout).unwrap();
    let group = |key: &str| {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["dimension"] == "category" && g["key"] == key)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            group("counting")["runs"].clone(),
            group("counting")["correct"].clone()
        ),
        (2.into(), 2.into())
    );
    assert_eq!(group("(none)")["wrong"], 1);
    // The first run answered without a crop: it had a target and never zoomed.
    assert_eq!(v["targets"]["runs_with_targets"], 1);
    assert_eq!(v["targets"]["never_zoomed"], 1);
}

/// A chat server on loopback behind TLS (the test CA's certificate for localhost): it checks
/// the bearer key and streams `answer` back.
fn tls_server(expect_key: Option<&'static str>, answer: &'static str) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { return };
            let Ok(server) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(server, tcp);
            // A client that refused our certificate ends the handshake: wait for the next.
            let mut reader = BufReader::new(&mut tls);
            let mut head = String::new();
            let mut len = 0usize;
            let mut auth = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.trim().to_owned();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    match k.trim().to_lowercase().as_str() {
                        "content-length" => len = v.trim().parse().unwrap_or(0),
                        "authorization" => auth = Some(v.trim().to_owned()),
                        _ => {}
                    }
                }
                head.push_str(&l);
            }
            if head.is_empty() {
                continue;
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            drop(reader);
            assert_eq!(auth, expect_key.map(|k| format!("Bearer {k}")));
            let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": answer}, "finish_reason": "stop"}]});
            let out = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: {chunk}\n\ndata: [DONE]\n\n"
            );
            tls.write_all(out.as_bytes()).unwrap();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

fn ask(settings: HttpSettings) -> Result<String, String> {
    use thyme_studio::agent::{Policy, Request};
    let mut http = Http::new(settings);
    let request = Request {
        system: "sys".into(),
        user: "What is it?".into(),
        images: vec![],
        assistant: String::new(),
        stop: vec!["</answer>".into()],
        max_tokens: 64,
        temperature: 0.0,
        seed: None,
    };
    http.generate(&request, &mut |_| {}, &AtomicBool::new(false))
        .map(|s| s.text)
        .map_err(|e| e.to_string())
}

#[test]
fn an_https_server_with_its_own_ca_is_reached_and_the_key_file_must_be_private() {
    let port = tls_server(Some("k-123"), "<answer>ok</answer>");
    let url = format!("https://localhost:{port}/v1");
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "k-123\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let settings = |ca_file: Option<PathBuf>, key: Option<&PathBuf>| {
        let mut s = HttpSettings::new(&url, "m");
        s.ca_file = ca_file;
        match key.map(|k| thyme_studio::agent::http::read_key_file(k)) {
            Some(Ok(k)) => s.api_key = Some(k),
            Some(Err(e)) => s.problem = Some(e),
            None => s.api_key = None,
        }
        s
    };

    // The bundled roots do not know the test CA: the certificate is refused, and said so.
    let e = ask(settings(None, Some(&key_file))).unwrap_err();
    assert!(e.contains(&url) || e.contains("localhost"), "{e}");
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("Unknown"),
        "{e}"
    );

    // A key file others can read is refused before anything is sent.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = ask(settings(Some(ca.clone()), Some(&key_file))).unwrap_err();
    assert!(e.contains("chmod 600"), "{e}");

    // Trusting the CA, with a private key file: the answer streams back over TLS.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        ask(settings(Some(ca), Some(&key_file))).unwrap(),
        "<answer>ok</answer>"
    );
}

#[test]
fn run_forks_a_recorded_run_at_a_step_and_a_chat_server_writes_on() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("photo.png");
    image::RgbImage::from_fn(2496, 1392, |x, y| {
        image::Rgb([(x / 10) as u8, (y / 6) as u8, 90])
    })
    .save(&image)
    .unwrap();
    let crop = "<think>Zoom in.</think><code>\n```python\nimg = Image.open(image_path)\nc = img.crop((1250, 1030, 1360, 1070)).resize((220, 80))\nc.save('/mnt/data/temp_processed_images/sign.png')\nprint('/mnt/data/temp_processed_images/sign.png')\n```\n</code>";
    let script = dir.path().join("turn.txt");
    std::fs::write(
        &script,
        format!("{crop}<think>It reads ML4.</think> <answer>ML4</answer>"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
            .args([
                "run",
                "--question",
                "What is on the sign?",
                "--ground-truth",
                "ML4",
            ])
            .arg("--image")
            .arg(&image)
            .arg("--runs")
            .arg(dir.path().join("runs"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let recorded = dir.path().join("recorded.jsonl");
    run(&[
        "--script",
        script.to_str().unwrap(),
        "--out",
        recorded.to_str().unwrap(),
    ]);

    // The server answers once, differently from the recording.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let (_, _, body) = read_request(&mut s);
        tx.send(body).unwrap();
        stream_back(
            &mut s,
            &[
                "<think>A second look: MLA.</think> ",
                "<answer>MLA</answer>",
            ],
        );
    });
    let forked = dir.path().join("forked.jsonl");
    run(&[
        "--replay",
        recorded.to_str().unwrap(),
        "--fork-at",
        "3",
        "--policy",
        "http",
        "--base-url",
        &format!("http://127.0.0.1:{port}/v1"),
        "--out",
        forked.to_str().unwrap(),
    ]);
    let body = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    // The server continued the played-back turn, with the fresh sandbox output in it.
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    let text = serde_json::to_string(&last).unwrap();
    assert!(text.contains("crop((1250, 1030, 1360, 1070))"), "{text}");
    let line = std::fs::read_to_string(&forked).unwrap();
    let t: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let rec: Value = serde_json::from_str(
        std::fs::read_to_string(&recorded)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(t["run"]["forked_from"]["run"], rec["run"]["id"]);
    assert_eq!(t["run"]["forked_from"]["step"], 2);
    assert_eq!(t["steps"][0]["sampling"]["replayed"], true);
    assert_eq!(t["steps"][1]["kind"], "execute");
    assert_eq!(t["run"]["outcome"], "wrong");
    assert_eq!(rec["run"]["outcome"], "correct");

    // At step 1 with the person's own turn (another crop): it is played and run, marked,
    // and the server writes on from it.
    let mine = crop.replace("(1250, 1030, 1360, 1070)", "(1200, 1000, 1400, 1100)");
    let turn = dir.path().join("mine.txt");
    std::fs::write(&turn, &mine).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let (_, _, body) = read_request(&mut s);
        tx.send(body).unwrap();
        stream_back(&mut s, &["<think>ML4.</think> <answer>ML4</answer>"]);
    });
    let edited = dir.path().join("edited.jsonl");
    let url = format!("http://127.0.0.1:{port}/v1");
    let fork_args = |turn: &std::path::Path, out: &std::path::Path| {
        vec![
            "--replay".to_owned(),
            recorded.to_str().unwrap().to_owned(),
            "--fork-at".into(),
            "1".into(),
            "--turn".into(),
            turn.to_str().unwrap().to_owned(),
            "--policy".into(),
            "http".into(),
            "--base-url".into(),
            url.clone(),
            "--out".into(),
            out.to_str().unwrap().to_owned(),
        ]
    };
    let args = fork_args(&turn, &edited);
    run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let body = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    let text = serde_json::to_string(&last).unwrap();
    assert!(text.contains("crop((1200, 1000, 1400, 1100))"), "{text}");
    let t: Value = serde_json::from_str(
        std::fs::read_to_string(&edited)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(t["steps"][0]["text"], mine.as_str());
    assert_eq!(t["steps"][0]["sampling"]["edited_by_a_person"], true);
    assert_eq!(t["steps"][1]["kind"], "execute");
    assert_eq!(t["run"]["outcome"], "correct");
    // A turn file that is not there: named, exit 1, nothing written.
    let missing = dir.path().join("nope.txt");
    let gone = dir.path().join("gone.jsonl");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["run", "--question", "What is on the sign?", "--image"])
        .arg(&image)
        .args(fork_args(&missing, &gone))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nope.txt"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!gone.exists());
}
