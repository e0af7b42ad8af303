//! Byte encodings shared by every format: base64 in its two alphabets, and lowercase hex.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Why a base64 string could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid base64: {0}")]
pub struct Base64Error(String);

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(false);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// Decodes standard *or* URL-safe base64, padded or not.
///
/// DSSE: "verifiers MUST accept both" alphabets; protobuf JSON parsers accept both too.
pub fn base64_decode_any(text: &str) -> Result<Vec<u8>, Base64Error> {
    let text = text.trim_end_matches(['\n', '\r']);
    if text.contains(['-', '_']) {
        URL_SAFE_LENIENT
            .decode(text)
            .map_err(|e| Base64Error(e.to_string()))
    } else {
        STANDARD_LENIENT
            .decode(text)
            .map_err(|e| Base64Error(e.to_string()))
    }
}

/// Decodes strictly standard, padded base64 (C2SP signed notes require it).
pub fn base64_decode_strict(text: &str) -> Result<Vec<u8>, Base64Error> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Base64Error(e.to_string()))
}

/// Encodes standard, padded base64: what protobuf JSON, DSSE and C2SP notes write.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// [`base64_encode`] appended to `out`, without an intermediate string.
pub fn base64_encode_into(bytes: &[u8], out: &mut String) {
    base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
}

/// Lowercase hex, as in-toto DigestSets and Rekor write it.
pub fn hex_encode(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_alphabets_and_padding_modes_decode() {
        let bytes = [0xfbu8, 0xff, 0xbf, 0x01];
        for text in ["+/+/AQ==", "+/+/AQ", "-_-_AQ==", "-_-_AQ"] {
            assert_eq!(base64_decode_any(text).unwrap(), bytes, "{text}");
        }
    }

    #[test]
    fn encoding_into_a_string_appends_the_same_text() {
        for len in [0usize, 1, 2, 3, 31, 32, 33, 1000, 3000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut out = String::from("prefix:");
            base64_encode_into(&bytes, &mut out);
            assert_eq!(out, format!("prefix:{}", base64_encode(&bytes)), "{len}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(base64_decode_any("a*b=").is_err());
        assert!(base64_decode_any("+/-_").is_err(), "mixed alphabets");
        assert!(
            base64_decode_strict("+/+/AQ").is_err(),
            "strict needs padding"
        );
    }
}
