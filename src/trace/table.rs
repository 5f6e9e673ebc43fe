//! Tables that evaluation harnesses write their predictions to, read as rows of named cells:
//! an Excel workbook's first sheet (`.xlsx`, as pandas' `to_excel` writes it), tab- or
//! comma-separated values with quoted fields (`.tsv`, `.csv`), and JSON records (`.json`, a
//! list of objects). Cells are strings (numbers as written); an empty cell is left out.
//! The workbook is read within byte limits, so a hostile archive cannot fill the memory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

/// One row: column name -> cell text.
pub type Row = BTreeMap<String, String>;

/// The most a workbook part may unpack to.
const PART_MAX_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Format(String),
}

/// Whether `path` names a table this module reads (by its extension).
pub fn is_table(path: &Path) -> bool {
    matches!(extension(path).as_str(), "xlsx" | "tsv" | "csv")
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The rows of the table at `path`, the first row (or each record's keys) naming the columns.
pub fn read_table(path: &Path) -> Result<Vec<Row>, TableError> {
    match extension(path).as_str() {
        "xlsx" => xlsx(path),
        "tsv" => Ok(delimited(&std::fs::read_to_string(path)?, '\t')),
        "csv" => Ok(delimited(&std::fs::read_to_string(path)?, ',')),
        _ => {
            let v: Value = serde_json::from_slice(&std::fs::read(path)?)
                .map_err(|e| TableError::Format(format!("not JSON: {e}")))?;
            let Value::Array(items) = v else {
                return Err(TableError::Format("not a list of records".into()));
            };
            Ok(items
                .iter()
                .filter_map(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| {
                            let text = match v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            (k.clone(), text)
                        })
                        .collect()
                })
                .collect())
        }
    }
}

/// Separated values with `"` quoting (`""` inside a quoted field), fields across lines.
fn delimited(text: &str, sep: char) -> Vec<Row> {
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, c) if c == sep => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    rows_of(records)
}

/// Rows keyed by the first record's names.
fn rows_of(records: Vec<Vec<String>>) -> Vec<Row> {
    let mut it = records.into_iter();
    let Some(header) = it.next() else {
        return Vec::new();
    };
    it.filter(|r| r.iter().any(|c| !c.is_empty()))
        .map(|r| {
            header
                .iter()
                .zip(r)
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v))
                .collect()
        })
        .collect()
}

fn part(
    archive: &mut zip::ZipArchive<std::fs::File>,
    name: &str,
) -> Result<Option<String>, TableError> {
    let entry = match archive.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(TableError::Format(format!("{name}: {e}"))),
    };
    if entry.size() > PART_MAX_BYTES {
        return Err(TableError::Format(format!(
            "{name} unpacks to {} MB, over the {} MB limit",
            entry.size() >> 20,
            PART_MAX_BYTES >> 20
        )));
    }
    let mut text = String::new();
    entry
        .take(PART_MAX_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| TableError::Format(format!("{name}: {e}")))?;
    Ok(Some(text))
}

/// The first worksheet of a workbook.
fn xlsx(path: &Path) -> Result<Vec<Row>, TableError> {
    let file = std::fs::File::open(path)?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| TableError::Format(format!("not an Excel workbook (not a zip): {e}")))?;
    let shared: Vec<String> = match part(&mut archive, "xl/sharedStrings.xml")? {
        Some(xml) => elements(&xml, "si").iter().map(|si| run_text(si)).collect(),
        None => Vec::new(),
    };
    let mut sheets: Vec<String> = archive
        .file_names()
        .filter(|n| n.starts_with("xl/worksheets/sheet") && n.ends_with(".xml"))
        .map(str::to_owned)
        .collect();
    // sheet1, sheet2, ..., sheet10 in their numbers' order.
    sheets.sort_by_key(|n| {
        n.trim_start_matches("xl/worksheets/sheet")
            .trim_end_matches(".xml")
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    let first = sheets
        .first()
        .cloned()
        .ok_or_else(|| TableError::Format("the workbook has no worksheet".into()))?;
    let xml = part(&mut archive, &first)?.unwrap_or_default();
    let mut records = Vec::new();
    for row in elements(&xml, "row") {
        let mut record: Vec<String> = Vec::new();
        for (attrs, body) in elements_with_attrs(row, "c") {
            let col = attr(attrs, "r").map_or(record.len(), column_index);
            if col >= MAX_COLUMNS {
                continue;
            }
            let kind = attr(attrs, "t").unwrap_or("n");
            let text = match kind {
                "s" => elements(body, "v")
                    .first()
                    .and_then(|v| unescape(v).trim().parse::<usize>().ok())
                    .and_then(|i| shared.get(i).cloned())
                    .unwrap_or_default(),
                "inlineStr" => run_text(body),
                _ => elements(body, "v")
                    .first()
                    .map(|v| unescape(v))
                    .unwrap_or_default(),
            };
            if col >= record.len() {
                record.resize(col + 1, String::new());
            }
            record[col] = text;
        }
        records.push(record);
    }
    Ok(rows_of(records))
}

/// The most columns a sheet has (Excel's `XFD`).
const MAX_COLUMNS: usize = 16_384;

/// "AB12" -> 27 (at most [`MAX_COLUMNS`]: a longer name is no column).
fn column_index(cell: &str) -> usize {
    cell.chars()
        .take_while(char::is_ascii_alphabetic)
        .fold(0usize, |n, c| {
            n.saturating_mul(26)
                .saturating_add(c.to_ascii_uppercase() as usize - 'A' as usize + 1)
                .min(MAX_COLUMNS + 1)
        })
        .saturating_sub(1)
}

/// The text of a string item: its `<t>` runs, without phonetic runs.
fn run_text(si: &str) -> String {
    let mut out = String::new();
    let mut rest = si;
    while let Some(at) = rest.find('<') {
        let tail = &rest[at..];
        if tail.starts_with("<rPh") {
            // A phonetic run: skipped whole.
            rest = tail.find("</rPh>").map_or("", |e| &tail[e + 6..]);
            continue;
        }
        if tail.starts_with("<t>") || tail.starts_with("<t ") {
            let Some(open_end) = tail.find('>') else {
                break;
            };
            if tail[..open_end].ends_with('/') {
                rest = &tail[open_end + 1..];
                continue;
            }
            let body = &tail[open_end + 1..];
            let close = body.find("</t>").unwrap_or(body.len());
            out.push_str(&unescape(&body[..close]));
            rest = body.get(close + 4..).unwrap_or("");
            continue;
        }
        rest = &tail[1..];
    }
    out
}

/// The bodies of the `<name ...>...</name>` elements (not nested in each other).
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    elements_with_attrs(xml, name)
        .into_iter()
        .map(|(_, b)| b)
        .collect()
}

/// Each `<name attrs>body</name>` (or `<name attrs/>`, with an empty body).
fn elements_with_attrs<'a>(xml: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let tail = &rest[at + open.len()..];
        // `<c` must not match `<cols`.
        if !tail.starts_with(['>', ' ', '/', '\t', '\n', '\r']) {
            rest = tail;
            continue;
        }
        let Some(end) = tail.find('>') else { break };
        let attrs = &tail[..end];
        if attrs.ends_with('/') {
            out.push((attrs.trim_end_matches('/'), ""));
            rest = &tail[end + 1..];
            continue;
        }
        let body_all = &tail[end + 1..];
        let stop = body_all.find(&close).unwrap_or(body_all.len());
        out.push((attrs, &body_all[..stop]));
        rest = body_all.get(stop + close.len()..).unwrap_or("");
    }
    out
}

/// An attribute's value in a tag's attribute text.
fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = format!(" {attrs}").find(&key)?;
    let from = at + key.len() - 1;
    let value = attrs.get(from..)?;
    value.find('"').map(|end| &value[..end])
}

/// XML entities and character references, then OOXML's `_xHHHH_` escapes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let name = &tail[1..end];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32),
            n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    ooxml_unescape(&out)
}

/// `_x000D_` -> '\r' (how Excel files keep control characters).
fn ooxml_unescape(s: &str) -> String {
    if !s.contains("_x") {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("_x") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let code = tail
            .get(2..6)
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
            .filter(|_| tail.get(6..7) == Some("_"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &tail[7..];
            }
            None => {
                out.push_str("_x");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_separated_values_keep_tabs_quotes_and_newlines() {
        let rows = delimited(
            "\"index\"\t\"raw_response\"\n\"1\"\t\"[{'a': \"\"x\"\"}]\nline 2\twith tab\"\n",
            '\t',
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["index"], "1");
        assert_eq!(rows[0]["raw_response"], "[{'a': \"x\"}]\nline 2\twith tab");
    }

    #[test]
    fn sheet_cells_shared_strings_and_escapes() {
        assert_eq!(column_index("A1"), 0);
        assert_eq!(column_index("AB12"), 27);
        assert_eq!(column_index("XFD1"), MAX_COLUMNS - 1);
        // A hostile name neither overflows nor asks for a huge row.
        assert_eq!(column_index(&"Z".repeat(40)), MAX_COLUMNS);
        assert_eq!(
            run_text(
                "<r><t xml:space=\"preserve\">a &amp; </t></r><r><t>b_x000D_</t></r><rPh><t>x</t></rPh>"
            ),
            "a & b\r"
        );
        let cells = elements_with_attrs(
            "<cols><col/></cols><c r=\"B2\" t=\"s\"><v>3</v></c><c r=\"C2\"/>",
            "c",
        );
        assert_eq!(cells.len(), 2);
        assert_eq!(attr(cells[0].0, "t"), Some("s"));
        assert_eq!(attr(cells[0].0, "r"), Some("B2"));
        assert_eq!(
            unescape("&lt;code&gt; &#65;&#x42; &bogus"),
            "<code> AB &bogus"
        );
    }
}
