//! Python literals as `repr()` and `str()` write them (`{'role': 'user', ...}`, `[...]`,
//! `None`, `True`), read into JSON values. Some evaluation harnesses store a conversation in a
//! table cell as `str(list_of_dicts)` (VLMEvalKit's `raw_response` column); this reads it
//! without running Python. Only literals: no names, calls or expressions.

use serde_json::{Map, Number, Value};

/// Why a literal could not be read, with the character offset.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("not a Python literal at character {at}: {what}")]
pub struct LiteralError {
    pub at: usize,
    pub what: String,
}

/// Read one Python literal (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Value, LiteralError> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser { s: &chars, i: 0 };
    let v = p.value(0)?;
    p.space();
    if p.i < chars.len() {
        return Err(p.err("text after the literal"));
    }
    Ok(v)
}

/// The whole items of a list literal that may be cut short (a table cell truncated at its
/// length limit), and the error where it stops when it is not whole.
pub fn parse_list_prefix(text: &str) -> (Vec<Value>, Option<LiteralError>) {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser { s: &chars, i: 0 };
    p.space();
    if p.peek() != Some('[') {
        return (Vec::new(), Some(p.err("not a list")));
    }
    p.i += 1;
    let mut items = Vec::new();
    loop {
        p.space();
        if p.peek() == Some(']') {
            p.i += 1;
            p.space();
            let rest = (p.i < chars.len()).then(|| p.err("text after the literal"));
            return (items, rest);
        }
        match p.value(1) {
            Ok(v) => items.push(v),
            Err(e) => return (items, Some(e)),
        }
        p.space();
        match p.peek() {
            Some(',') => p.i += 1,
            Some(']') => {}
            _ => return (items, Some(p.err("',' or ']' in a list"))),
        }
    }
}

/// Nesting deeper than this is refused (a hostile cell cannot exhaust the stack).
const MAX_DEPTH: usize = 200;

struct Parser<'a> {
    s: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> LiteralError {
        LiteralError {
            at: self.i,
            what: what.to_owned(),
        }
    }

    fn space(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_whitespace()) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn word(&mut self, w: &str) -> bool {
        let n = w.chars().count();
        let matches = self
            .s
            .get(self.i..self.i + n)
            .is_some_and(|got| got.iter().copied().eq(w.chars()));
        let ends = !self
            .s
            .get(self.i + n)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_');
        if matches && ends {
            self.i += n;
        }
        matches && ends
    }

    fn value(&mut self, depth: usize) -> Result<Value, LiteralError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.space();
        match self.peek() {
            None => Err(self.err("the text ends where a value should be")),
            Some('{') => self.dict(depth),
            Some('[') => self.seq(']', depth),
            Some('(') => self.seq(')', depth),
            Some('\'' | '"') => self.string(false).map(Value::String),
            Some('b' | 'r' | 'u' | 'B' | 'R' | 'U')
                if matches!(self.s.get(self.i + 1), Some('\'' | '"')) =>
            {
                let raw = matches!(self.peek(), Some('r' | 'R'));
                self.i += 1;
                self.string(raw).map(Value::String)
            }
            Some(_) if self.word("None") => Ok(Value::Null),
            Some(_) if self.word("True") => Ok(Value::Bool(true)),
            Some(_) if self.word("False") => Ok(Value::Bool(false)),
            Some(_) => self.number(),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Value, LiteralError> {
        self.i += 1;
        let mut map = Map::new();
        loop {
            self.space();
            if self.peek() == Some('}') {
                self.i += 1;
                return Ok(Value::Object(map));
            }
            let key = match self.value(depth + 1)? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            self.space();
            if self.peek() != Some(':') {
                return Err(self.err("a ':' after a dict key"));
            }
            self.i += 1;
            let v = self.value(depth + 1)?;
            map.insert(key, v);
            self.space();
            match self.peek() {
                Some(',') => self.i += 1,
                Some('}') => {}
                _ => return Err(self.err("',' or '}' in a dict")),
            }
        }
    }

    fn seq(&mut self, close: char, depth: usize) -> Result<Value, LiteralError> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.space();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(Value::Array(items));
            }
            items.push(self.value(depth + 1)?);
            self.space();
            match self.peek() {
                Some(',') => self.i += 1,
                Some(c) if c == close => {}
                _ => return Err(self.err("',' or the closing bracket in a list")),
            }
        }
    }

    fn hex(&mut self, n: usize) -> Result<char, LiteralError> {
        let digits: String = self
            .s
            .get(self.i..self.i + n)
            .unwrap_or(&[])
            .iter()
            .collect();
        let code = u32::from_str_radix(&digits, 16).map_err(|_| self.err("a hex escape"))?;
        self.i += n;
        Ok(char::from_u32(code).unwrap_or('\u{fffd}'))
    }

    /// A quoted string; `raw` (`r'...'`) keeps its backslashes as they are.
    fn string(&mut self, raw: bool) -> Result<String, LiteralError> {
        let Some(q) = self.peek() else {
            return Err(self.err("a quote"));
        };
        self.i += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == q {
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.peek() else { break };
            self.i += 1;
            if raw {
                out.push('\\');
                out.push(e);
                continue;
            }
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                'x' => out.push(self.hex(2)?),
                'u' => out.push(self.hex(4)?),
                'U' => out.push(self.hex(8)?),
                '0'..='7' => {
                    let mut code = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match self.peek().and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                code = code * 8 + d;
                                self.i += 1;
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                }
                '\n' => {}
                other @ ('\\' | '\'' | '"') => out.push(other),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        Err(self.err("a string that does not end"))
    }

    fn number(&mut self) -> Result<Value, LiteralError> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
        {
            self.i += 1;
        }
        let text: String = self.s[start..self.i]
            .iter()
            .filter(|c| **c != '_')
            .collect();
        if text.is_empty() {
            return Err(self.err("a value"));
        }
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        match text.parse::<f64>() {
            // inf and nan have no JSON number.
            Ok(f) => Ok(Number::from_f64(f).map_or(Value::Null, Value::Number)),
            Err(_) => {
                self.i = start;
                Err(self.err(&format!("'{text}' is no literal")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reprs_become_json() {
        let v = parse(
            r#"[{'role': 'system', 'content': "It's a tool.\nUse it."}, {'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': 'data:image/jpeg;base64'}}, {'type': 'text', 'text': 'a\\b \'q\' \x41\u00e9'}]}, (1, -2.5, None, True, False)]"#,
        )
        .unwrap();
        assert_eq!(v[0]["content"], "It's a tool.\nUse it.");
        assert_eq!(
            v[1]["content"][0]["image_url"]["url"],
            "data:image/jpeg;base64"
        );
        assert_eq!(v[1]["content"][1]["text"], "a\\b 'q' Aé");
        assert_eq!(v[2], serde_json::json!([1, -2.5, null, true, false]));
    }

    #[test]
    fn raw_strings_keep_their_backslashes() {
        assert_eq!(parse(r#"r'a\n\'b'"#).unwrap(), "a\\n\\'b");
    }

    #[test]
    fn broken_and_hostile_literals_are_errors() {
        for bad in [
            "[{'a': 1}",
            "{'a' 1}",
            "__import__('os')",
            "['cut at the cell limit",
            "[1] [2]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn a_list_cut_short_keeps_its_whole_items() {
        let (items, err) =
            parse_list_prefix("[{'role': 'user'}, {'role': 'assistant', 'content': 'cut he");
        assert_eq!(items, vec![serde_json::json!({"role": "user"})]);
        assert!(err.is_some());
        let (items, err) = parse_list_prefix("[1, 2]");
        assert_eq!(items.len(), 2);
        assert!(err.is_none());
    }
}
