//! securesystemslib "canonical JSON" (the OLPC flavour): the exact bytes in-toto legacy
//! signatures and key ids cover.
//!
//! SPECS §0, securesystemslib `formats.encode_canonical`: object keys sorted by code point
//! (Python `sorted()`; Rust's `str` order is the same, UTF-8 preserving code point order), no
//! whitespace, strings quoted with only `\` and `"` escaped (control characters and non-ASCII
//! are written raw, as UTF-8), integers only (floats are refused), `true`/`false`/`null`.
//! This is *not* RFC 8785 JCS ([`crate::jcs`]), which escapes control characters and formats
//! floats.

use serde_json::Value;

/// Why a JSON value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalJsonError {
    #[error("canonical JSON has no floats (found {number}); in-toto metadata holds integers only")]
    Float { number: String },
}

/// The canonical encoding of `value`.
pub fn encode(value: &Value) -> Result<Vec<u8>, CanonicalJsonError> {
    let mut out = Vec::with_capacity(256);
    write(value, &mut out, false)?;
    Ok(out)
}

/// Like [`encode`], but control characters escaped as JSON requires (`\n`, `\u001f`), so the
/// result is valid JSON that python's `json.loads` reads: the payload of a DSSE-wrapped link or
/// layout (a canonical encoding of a PEM key would hold raw newlines). Identical to [`encode`]
/// for values without control characters.
pub fn encode_json(value: &Value) -> Result<Vec<u8>, CanonicalJsonError> {
    let mut out = Vec::with_capacity(256);
    write(value, &mut out, true)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>, escape: bool) -> Result<(), CanonicalJsonError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                out.extend_from_slice(n.to_string().as_bytes());
            } else {
                return Err(CanonicalJsonError::Float {
                    number: n.to_string(),
                });
            }
        }
        Value::String(s) => write_string(s, out, escape),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out, escape)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Sort explicitly: the map's own order depends on serde_json features.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out, escape);
                out.push(b':');
                write(item, out, escape)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>, escape: bool) {
    out.push(b'"');
    for &byte in s.as_bytes() {
        if byte == b'\\' || byte == b'"' {
            out.push(b'\\');
        } else if escape && byte < 0x20 {
            let short = match byte {
                b'\n' => Some(b'n'),
                b'\r' => Some(b'r'),
                b'\t' => Some(b't'),
                _ => None,
            };
            match short {
                Some(c) => out.extend_from_slice(&[b'\\', c]),
                None => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            }
            continue;
        }
        out.push(byte);
    }
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_compact_raw_control_characters() {
        let v = json!({"b": [1, -2, true, null], "a": "q\"\\\n\u{e9}", "B": {}});
        let got = String::from_utf8(encode(&v).unwrap()).unwrap();
        assert_eq!(
            got,
            "{\"B\":{},\"a\":\"q\\\"\\\\\n\u{e9}\",\"b\":[1,-2,true,null]}"
        );
    }

    #[test]
    fn code_point_order_not_utf16() {
        // U+FFFD sorts after U+10000 in UTF-16 (JCS), before it by code point (Python).
        let v = json!({"\u{10000}": 1, "\u{fffd}": 2});
        let got = String::from_utf8(encode(&v).unwrap()).unwrap();
        assert_eq!(got, "{\"\u{fffd}\":2,\"\u{10000}\":1}");
    }

    #[test]
    fn json_flavour_escapes_control_characters() {
        let v = json!({"k": "a\nb\u{1}"});
        assert_eq!(encode_json(&v).unwrap(), b"{\"k\":\"a\\nb\\u0001\"}");
        let back: Value = serde_json::from_slice(&encode_json(&v).unwrap()).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn floats_are_refused() {
        assert!(encode(&json!({"x": 1.5})).is_err());
        assert_eq!(
            encode(&json!(u64::MAX)).unwrap(),
            u64::MAX.to_string().as_bytes()
        );
    }
}
