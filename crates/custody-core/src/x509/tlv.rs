//! Raw DER TLV walking: the exact bytes of an element, for signatures over what was received
//! (the TBSCertificate, CMS signed attributes) and for rebuilding the RFC 6962 precertificate.
//!
//! Only definite, minimal DER lengths and low tag numbers are accepted; anything else is `None`.

/// One DER element: its tag byte, the header bytes, the content bytes and all of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub whole: &'a [u8],
}

/// Splits the first element off `input`.
pub(crate) fn split(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *input.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *input.get(1)?;
    let (len, header_len) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        if bytes.first() == Some(&0) {
            return None;
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return None;
        }
        (len, 2 + n)
    };
    let end = header_len.checked_add(len)?;
    let whole = input.get(..end)?;
    let content = whole.get(header_len..)?;
    let rest = input.get(end..)?;
    Some((
        Tlv {
            tag,
            content,
            whole,
        },
        rest,
    ))
}

/// The one element that makes up all of `input`.
pub(crate) fn single(input: &[u8]) -> Option<Tlv<'_>> {
    match split(input)? {
        (tlv, []) => Some(tlv),
        _ => None,
    }
}

/// All elements of a constructed element's content, in order.
pub(crate) fn children(mut content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = split(content)?;
        out.push(tlv);
        content = rest;
    }
    Some(out)
}

/// Encodes an element with `tag` around `content` (minimal DER length).
pub(crate) fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_short_and_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let der = encode(0x30, &content);
            let tlv = single(&der).unwrap();
            assert_eq!(
                (tlv.tag, tlv.content.len(), tlv.whole.len()),
                (0x30, len, der.len())
            );
        }
    }

    #[test]
    fn refuses_non_der_lengths_and_truncation() {
        for bad in [
            &[0x30, 0x80][..],                  // indefinite
            &[0x30, 0x81, 0x05, 1, 2, 3, 4, 5], // long form for a short length
            &[0x30, 0x82, 0x00, 0x90],          // leading zero
            &[0x30, 0x05, 1, 2],                // truncated
            &[0x1f, 0x01, 0x00],                // high tag number
            &[0x30],
        ] {
            assert!(split(bad).is_none(), "{bad:?}");
        }
        assert!(single(&[0x04, 0x00, 0x00]).is_none(), "trailing bytes");
    }
}
