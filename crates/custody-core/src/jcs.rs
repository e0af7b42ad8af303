//! RFC 8785 JSON Canonicalization Scheme (JCS), as Rekor uses it for entry bodies and the SET
//! payload (SPECS §0, §5.1, §5.2; Rekor calls `github.com/cyberphone/json-canonicalization`).
//!
//! * Object members sorted by their names as UTF-16 code units (RFC 8785 §3.2.3).
//! * Numbers as ECMAScript `Number.prototype.toString` prints the IEEE-754 double
//!   (RFC 8785 §3.2.2.3); integers beyond 2^53 are first rounded to a double, as every JCS
//!   implementation that parses into doubles (Go, JavaScript) does. NaN and infinities do not
//!   exist in JSON and are refused.
//! * Strings with the ECMAScript `JSON.stringify` escapes (RFC 8785 §3.2.2.2): `\b \f \n \r \t
//!   \" \\`, other C0 controls as `\u00xx`, everything else literal UTF-8.
//! * No whitespace.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// Why a value has no canonical form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JcsError {
    #[error("the number {0} has no JSON form (NaN or infinite)")]
    NonFiniteNumber(String),
    #[error("the input is not JSON: {0}")]
    NotJson(String),
}

/// The canonical form of a JSON value.
pub fn canonicalize(value: &Value) -> Result<String, JcsError> {
    let mut out = String::new();
    write_value(&mut out, value)?;
    Ok(out)
}

/// Parses JSON text and returns its canonical form.
pub fn canonicalize_json(bytes: &[u8]) -> Result<String, JcsError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| JcsError::NotJson(e.to_string()))?;
    canonicalize(&value)
}

/// True when `bytes` is JSON already in canonical form (so every JCS implementation reads the
/// same value from it: no duplicate names, no alternative escapes or number spellings).
pub fn is_canonical(bytes: &[u8]) -> bool {
    canonicalize_json(bytes).is_ok_and(|c| c.as_bytes() == bytes)
}

fn write_value(out: &mut String, value: &Value) -> Result<(), JcsError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&number(n)?),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map)?,
    }
    Ok(())
}

fn write_object(out: &mut String, map: &Map<String, Value>) -> Result<(), JcsError> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // RFC 8785 §3.2.3: sort by the UTF-16 code units of the names.
    members.sort_by(|(a, _), (b, _)| utf16_cmp(a, b));
    out.push('{');
    for (i, (name, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, name);
        out.push(':');
        write_value(out, value)?;
    }
    out.push('}');
    Ok(())
}

fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Integers up to 2^53 are exact doubles and print as themselves.
const EXACT_INTEGER: u64 = 1 << 53;

fn number(n: &Number) -> Result<String, JcsError> {
    if let Some(u) = n.as_u64() {
        if u <= EXACT_INTEGER {
            return Ok(u.to_string());
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= EXACT_INTEGER {
            return Ok(i.to_string());
        }
    }
    let f = n
        .as_f64()
        .ok_or_else(|| JcsError::NonFiniteNumber(n.to_string()))?;
    format_double(f)
}

/// ECMAScript `Number::toString(x)` (ECMA-262 §6.1.6.1.20) for a finite double.
pub fn format_double(x: f64) -> Result<String, JcsError> {
    if !x.is_finite() {
        return Err(JcsError::NonFiniteNumber(x.to_string()));
    }
    if x == 0.0 {
        // Both +0 and -0 print as "0".
        return Ok("0".to_owned());
    }
    // Rust's `{:e}` prints the shortest digit string that round-trips, which is the `k`
    // digits of the ECMAScript algorithm: "d.ddddde<exp>".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci
        .split_once('e')
        .ok_or_else(|| JcsError::NonFiniteNumber(sci.clone()))?;
    let exponent: i32 = exponent
        .parse()
        .map_err(|_| JcsError::NonFiniteNumber(sci.clone()))?;
    let digits = ties_to_even(
        mantissa.chars().filter(char::is_ascii_digit).collect(),
        exponent,
        x.abs(),
    );
    let k = i32::try_from(digits.len()).map_err(|_| JcsError::NonFiniteNumber(sci.clone()))?;
    let n = exponent + 1;
    let mut out = String::new();
    if x.is_sign_negative() {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if n - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n - 1).abs().to_string());
    }
    Ok(out)
}

/// ECMA-262 Number::toString step 5: of two shortest digit strings equally close to `x`,
/// take the even one. Rust's shortest formatting may return the odd one of such a tie
/// (RFC 8785 Appendix B: `43143ff3c1cb0959` is `1424953923781206.2`, not `.3`).
fn ties_to_even(digits: String, exponent: i32, x: f64) -> String {
    // The exact decimal expansion of a double has at most 767 significant digits.
    let exact = format!("{x:.800e}");
    let Some((exact_mantissa, exact_exponent)) = exact.split_once('e') else {
        return digits;
    };
    if exact_exponent.parse::<i32>().ok() != Some(exponent) {
        return digits;
    }
    let exact: Vec<u8> = exact_mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let k = digits.len();
    let (Some(&next), Some(rest)) = (exact.get(k), exact.get(k + 1..)) else {
        return digits;
    };
    if next != b'5' || rest.iter().any(|&d| d != b'0') {
        return digits;
    }
    // A tie between floor = exact[..k] and floor + 1 in the last place.
    let mut candidate = exact[..k].to_vec();
    let last = candidate.last().copied().unwrap_or(b'0');
    if (last - b'0') % 2 == 1 {
        if last == b'9' {
            return digits;
        }
        if let Some(l) = candidate.last_mut() {
            *l += 1;
        }
    }
    let Ok(candidate) = String::from_utf8(candidate) else {
        return digits;
    };
    if candidate.ends_with('0') {
        return digits;
    }
    let (first, tail) = candidate.split_at(1);
    let dot = if tail.is_empty() { "" } else { "." };
    let round_trips = format!("{first}{dot}{tail}e{exponent}").parse::<f64>().ok() == Some(x);
    if round_trips { candidate } else { digits }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
