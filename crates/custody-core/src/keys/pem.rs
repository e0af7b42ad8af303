//! PEM (RFC 7468) reading and writing, as Go's `encoding/pem` does it for key files.
//!
//! Reading takes the first block, skipping any explanatory text before it (RFC 7468 §2: parsers
//! SHOULD ignore it), accepts any line width and CRLF, and refuses RFC 1421 headers (legacy
//! OpenSSL `Proc-Type: 4,ENCRYPTED`). The body is standard padded base64, as Go requires.
//! Bodies may be secret (unencrypted PKCS#8), so every copy lives in a `Zeroizing` buffer.

use zeroize::Zeroizing;

use super::KeyError;
use crate::encoding::{base64_decode_strict, base64_encode};

const BEGIN: &[u8] = b"-----BEGIN ";
const DASHES: &[u8] = b"-----";
/// Longest label accepted; real ones are under 40 characters.
const MAX_LABEL: usize = 64;

/// One decoded PEM block.
pub(crate) struct PemBlock {
    pub label: String,
    pub der: Zeroizing<Vec<u8>>,
}

/// The label of the first PEM block, without decoding its body.
pub(crate) fn first_label(text: &[u8]) -> Option<String> {
    let start = find(text, BEGIN)? + BEGIN.len();
    let (label, _) = read_label(&text[start..]).ok()?;
    Some(label)
}

/// Decodes the first PEM block in `text`.
pub(crate) fn decode_first(text: &[u8]) -> Result<PemBlock, KeyError> {
    let start = find(text, BEGIN).ok_or(KeyError::NotAKey)? + BEGIN.len();
    let (label, after_label) = read_label(&text[start..])?;
    let rest = &text[start + after_label..];
    let body_start = line_end(rest).ok_or(KeyError::Truncated)?;
    let rest = &rest[body_start..];

    let end_marker = [b"-----END ", label.as_bytes(), DASHES].concat();
    let body_len = find(rest, &end_marker).ok_or(KeyError::Truncated)?;
    let body = &rest[..body_len];
    if body.contains(&b':') {
        return Err(KeyError::MalformedPem {
            reason: "PEM headers (legacy OpenSSL encryption) are not supported",
        });
    }
    let mut base64 = Zeroizing::new(String::with_capacity(body.len()));
    for &byte in body {
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => {
                base64.push(char::from(byte))
            }
            _ => {
                return Err(KeyError::MalformedPem {
                    reason: "the body contains a character that is not base64",
                });
            }
        }
    }
    if base64.is_empty() {
        return Err(KeyError::MalformedPem {
            reason: "the PEM block is empty",
        });
    }
    let der = base64_decode_strict(&base64)
        .map(Zeroizing::new)
        .map_err(|_| KeyError::MalformedPem {
            reason: "the body is not valid base64 (truncated or edited?)",
        })?;
    Ok(PemBlock { label, der })
}

/// Reads `LABEL-----` at the start of `text`; returns the label and the bytes consumed.
fn read_label(text: &[u8]) -> Result<(String, usize), KeyError> {
    let window = &text[..text.len().min(MAX_LABEL + DASHES.len())];
    let Some(len) = find(window, DASHES) else {
        if find(text, b"\n").is_none() && text.len() <= MAX_LABEL {
            return Err(KeyError::Truncated);
        }
        return Err(KeyError::MalformedPem {
            reason: "the BEGIN line has no closing '-----'",
        });
    };
    let label = &text[..len];
    // RFC 7468 §3: labels are printable ASCII without '-' at either end.
    if !label.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(KeyError::MalformedPem {
            reason: "the BEGIN line's label is not printable ASCII",
        });
    }
    let label = String::from_utf8_lossy(label).into_owned();
    Ok((label, len + DASHES.len()))
}

/// Index just past the end of the current line, if the line ends.
fn line_end(text: &[u8]) -> Option<usize> {
    let newline = find(text, b"\n")?;
    Some(newline + 1)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Encodes a PEM block: 64-column standard base64, LF line ends, trailing newline.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let mut out = String::new();
    encode_into(&mut out, label, der);
    out
}

/// [`encode`] for secret bodies: no unzeroized copy is left behind.
pub(crate) fn encode_secret(label: &str, der: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    encode_into(&mut out, label, der);
    out
}

fn encode_into(out: &mut String, label: &str, der: &[u8]) {
    let body = Zeroizing::new(base64_encode(der));
    let lines = body.len().div_ceil(64);
    // Reserve everything up front so the buffer never reallocates (a reallocation would leave
    // an unzeroized copy of a secret body behind).
    out.reserve_exact(2 * (label.len() + 17) + body.len() + lines);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        out.extend(line.iter().copied().map(char::from));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_line_width() {
        let der: Vec<u8> = (0..=255u8).collect();
        let text = encode("PUBLIC KEY", &der);
        assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(text.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(text.lines().all(|line| line.len() <= 64));
        let block = decode_first(text.as_bytes()).unwrap();
        assert_eq!(block.label, "PUBLIC KEY");
        assert_eq!(*block.der, der);
        assert_eq!(*encode_secret("PUBLIC KEY", &der), text);
    }

    #[test]
    fn leading_text_crlf_and_long_lines_are_accepted() {
        let text = "a comment\r\n-----BEGIN X-----\r\nAAEC\r\nAw==\r\n-----END X-----\r\ntrailing";
        let block = decode_first(text.as_bytes()).unwrap();
        assert_eq!(
            (block.label.as_str(), &block.der[..]),
            ("X", &[0u8, 1, 2, 3][..])
        );
    }

    #[test]
    fn broken_pem_is_named() {
        assert!(matches!(decode_first(b"hello"), Err(KeyError::NotAKey)));
        assert!(matches!(
            decode_first(b"-----BEGIN X-----\nAAEC\n"),
            Err(KeyError::Truncated)
        ));
        assert!(matches!(
            decode_first(b"-----BEGIN X-----\nAAE\n-----END X-----\n"),
            Err(KeyError::MalformedPem { .. })
        ));
        assert!(matches!(
            decode_first(b"-----BEGIN X-----\n-----END X-----\n"),
            Err(KeyError::MalformedPem { .. })
        ));
        let headers = b"-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\n\nAAEC\n-----END X-----\n";
        assert!(matches!(
            decode_first(headers),
            Err(KeyError::MalformedPem { .. })
        ));
        assert_eq!(
            first_label(b"junk\n-----BEGIN ABC-----\n"),
            Some("ABC".into())
        );
    }
}
