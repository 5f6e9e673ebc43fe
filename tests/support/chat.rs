//! A chat server's side of one request, for tests that stand in for vLLM on loopback: read the
//! request's JSON body, answer with one streamed chunk.

use std::io::{BufRead, BufReader, Read, Write};

/// The request's body as JSON (its headers read up to Content-Length).
pub fn read_body(stream: &mut std::net::TcpStream) -> serde_json::Value {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let (mut line, mut len) = (String::new(), 0usize);
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Answer `text` as a server-sent stream of one chunk, then [DONE].
pub fn reply(stream: &mut std::net::TcpStream, text: &str) {
    let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]});
    let out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: {chunk}\n\ndata: [DONE]\n\n"
    );
    let _ = stream.write_all(out.as_bytes());
}
