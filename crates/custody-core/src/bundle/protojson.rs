//! Protobuf-JSON scalars as Sigstore writes them (SPECS §0): `bytes` as standard base64 (URL-safe
//! accepted), `int64` as decimal strings (JSON numbers accepted), default values omitted.

use serde_json::Value;

use crate::encoding::{Base64Error, base64_decode_any, base64_encode};

/// Why a protobuf-JSON scalar could not be read; the caller adds the field path.
#[derive(Debug)]
pub(crate) enum ScalarError {
    Base64(Base64Error),
    Integer(String),
}

/// Decodes a `bytes` field. Line breaks inside the text are skipped, as Go's `encoding/base64`
/// (protojson) and Python's `b64decode` do: some upstream bundles wrap base64 at 76 columns.
pub(crate) fn bytes(text: &str) -> Result<Vec<u8>, ScalarError> {
    if text.contains(['\n', '\r']) {
        let joined: String = text.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
        return base64_decode_any(&joined).map_err(ScalarError::Base64);
    }
    base64_decode_any(text).map_err(ScalarError::Base64)
}

/// Encodes a `bytes` field.
pub(crate) fn encode_bytes(bytes: &[u8]) -> String {
    base64_encode(bytes)
}

/// Reads an `int64` field: a decimal string or a JSON integer; absent means 0 (proto3 default).
pub(crate) fn int64(value: Option<&Value>) -> Result<i64, ScalarError> {
    match value {
        None => Ok(0),
        Some(Value::String(text)) => text
            .parse::<i64>()
            .map_err(|_| ScalarError::Integer(shorten(text))),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| ScalarError::Integer(n.to_string())),
        Some(other) => Err(ScalarError::Integer(shorten(&other.to_string()))),
    }
}

/// Writes an `int64` field as a decimal string, omitted when 0 (proto3 canonical JSON).
pub(crate) fn encode_int64(n: i64) -> Option<Value> {
    (n != 0).then(|| Value::String(n.to_string()))
}

/// At most 40 characters of untrusted text for an error message.
pub(crate) fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn int64_accepts_strings_and_numbers() {
        assert_eq!(
            int64(Some(&Value::String("79571823".into()))).unwrap(),
            79571823
        );
        assert_eq!(int64(Some(&serde_json::json!(-1))).unwrap(), -1);
        assert_eq!(int64(None).unwrap(), 0);
        assert!(int64(Some(&serde_json::json!(1.5))).is_err());
        assert!(int64(Some(&Value::String("1e3".into()))).is_err());
        assert!(int64(Some(&Value::String("99999999999999999999".into()))).is_err());
        assert_eq!(encode_int64(0), None);
        assert_eq!(bytes("AQID\nBA==\r\n").unwrap(), [1, 2, 3, 4]);
        assert_eq!(encode_int64(7), Some(Value::String("7".into())));
    }
}
