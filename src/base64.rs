//! Standard base64 (RFC 4648, with padding), for data URLs of images sent to models and
//! embedded in trace logs.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(ALPHABET[(n >> 18) as usize & 63] as char);
        out.push(ALPHABET[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Decode standard base64 (padding optional, ASCII whitespace ignored); `None` for any other
/// byte, or a length no encoding gives.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut seen = 0usize;
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        seen += 1;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (seen % 4 != 1).then_some(out)
}

/// The bytes of a `data:...;base64,...` URL.
pub fn data_url_bytes(url: &str) -> Option<Vec<u8>> {
    let (head, data) = url.split_once(',')?;
    head.ends_with(";base64").then(|| decode(data)).flatten()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::encode(raw.as_bytes()), enc);
            assert_eq!(super::decode(enc).as_deref(), Some(raw.as_bytes()));
        }
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(super::decode(&super::encode(&bytes)), Some(bytes));
        assert_eq!(super::decode("Zm9v\nYmFy"), Some(b"foobar".to_vec()));
        assert_eq!(super::decode("Zm9vYmFy"), super::decode("Zm9vYmFy=="));
        assert_eq!(super::decode("base64_image"), None);
        assert_eq!(super::decode("Z"), None);
        assert_eq!(
            super::data_url_bytes("data:image/png;base64,Zm9v").as_deref(),
            Some(&b"foo"[..])
        );
        assert_eq!(super::data_url_bytes("data:image/png,Zm9v"), None);
    }
}
