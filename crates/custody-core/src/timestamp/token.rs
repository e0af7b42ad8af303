//! RFC 3161 structures: `TimeStampResp`, the `TimeStampToken` (CMS SignedData, RFC 5652) and
//! its `TSTInfo`. Typed fields come from the `cms` crate; the bytes that are signed (signed
//! attributes, embedded certificates) are taken from the DER received, never re-encoded.

use chrono::{DateTime, NaiveDate, Utc};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfo};
use der::asn1::{ObjectIdentifier as Oid, OctetString};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;

use super::TimestampError;
use crate::x509::tlv;

const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
pub(super) const TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
pub(super) const ATTR_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
pub(super) const ATTR_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");

/// A parsed timestamp token, with the exact bytes its signature covers.
pub(super) struct Token {
    pub signer: SignerInfo,
    /// DER of the signed attributes with the SET tag (RFC 5652 §5.4), as received.
    pub signed_attrs_der: Vec<u8>,
    /// Embedded certificates, DER as received.
    pub certificates: Vec<Vec<u8>>,
    /// The eContent: DER TSTInfo.
    pub tst_info_der: Vec<u8>,
    pub tst_info: TstInfo,
}

/// The fields of `TSTInfo` custody uses.
pub(super) struct TstInfo {
    pub policy: Oid,
    pub imprint_algorithm: AlgorithmIdentifierOwned,
    pub imprint: Vec<u8>,
    pub serial: Vec<u8>,
    pub gen_time: DateTime<Utc>,
}

fn malformed(reason: &'static str) -> TimestampError {
    TimestampError::Malformed { reason }
}

/// Reads a `TimeStampResp` (what Sigstore bundles carry) or a bare `TimeStampToken`.
pub(super) fn parse(der: &[u8]) -> Result<Token, TimestampError> {
    let outer = tlv::single(der).ok_or_else(|| malformed("not a single DER element"))?;
    let fields = tlv::children(outer.content).ok_or_else(|| malformed("bad DER inside"))?;
    let token_der = match fields.as_slice() {
        // ContentInfo: contentType OID first.
        [first, ..] if first.tag == 0x06 => der,
        // TimeStampResp: PKIStatusInfo, then the token.
        [status, rest @ ..] if status.tag == 0x30 => {
            check_status(status.content)?;
            match rest {
                [token] => token.whole,
                _ => return Err(malformed("the response carries no timestamp token")),
            }
        }
        _ => return Err(malformed("neither a TimeStampResp nor a TimeStampToken")),
    };
    parse_token(token_der)
}

/// PKIStatus 0 (granted) or 1 (grantedWithMods).
fn check_status(status_info: &[u8]) -> Result<(), TimestampError> {
    let (status, _) = tlv::split(status_info).ok_or_else(|| malformed("bad PKIStatusInfo"))?;
    match (status.tag, status.content) {
        (0x02, [0] | [1]) => Ok(()),
        (0x02, [s]) => Err(TimestampError::NotGranted {
            status: u32::from(*s),
        }),
        _ => Err(malformed("bad PKIStatus")),
    }
}

fn parse_token(der: &[u8]) -> Result<Token, TimestampError> {
    let der_err = |what| move |source| TimestampError::MalformedDer { what, source };
    let info = ContentInfo::from_der(der).map_err(der_err("timestamp token (ContentInfo)"))?;
    if info.content_type != SIGNED_DATA {
        return Err(malformed("the token is not CMS SignedData"));
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(der_err("timestamp token (SignedData)"))?;
    if signed.encap_content_info.econtent_type != TST_INFO {
        return Err(malformed("the token's content is not a TSTInfo"));
    }
    let econtent = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| malformed("the token has no TSTInfo"))?;
    let tst_info_der = econtent
        .decode_as::<OctetString>()
        .map_err(der_err("TSTInfo OCTET STRING"))?
        .as_bytes()
        .to_vec();
    let tst_info = parse_tst_info(&tst_info_der).ok_or_else(|| malformed("bad TSTInfo"))?;
    let signers = signed.signer_infos.0.into_vec();
    let [signer] = <[SignerInfo; 1]>::try_from(signers)
        .map_err(|s| TimestampError::SignerCount { count: s.len() })?;
    let (signed_attrs_der, certificates) =
        raw_parts(der).ok_or_else(|| malformed("cannot locate the signed attributes"))?;
    Ok(Token {
        signer,
        signed_attrs_der,
        certificates,
        tst_info_der,
        tst_info,
    })
}

/// From the original DER: the signer's signed attributes (re-tagged as SET) and the embedded
/// certificates.
fn raw_parts(der: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let content_info = tlv::single(der)?;
    let [_, explicit] = tlv::children(content_info.content)?.try_into().ok()?;
    let signed_data = tlv::single(explicit.content)?;
    let fields = tlv::children(signed_data.content)?;
    let certificates = match fields.iter().find(|f| f.tag == 0xa0) {
        Some(set) => tlv::children(set.content)?
            .into_iter()
            .filter(|c| c.tag == 0x30)
            .map(|c| c.whole.to_vec())
            .collect(),
        None => Vec::new(),
    };
    let signer_infos = fields.last().filter(|f| f.tag == 0x31)?;
    let signer = tlv::single(signer_infos.content)?;
    let attrs = tlv::children(signer.content)?
        .into_iter()
        .find(|f| f.tag == 0xa0)?;
    Some((tlv::encode(0x31, attrs.content), certificates))
}

/// TSTInfo (RFC 3161 §2.4.2): version 1, policy, messageImprint, serialNumber, genTime, ….
fn parse_tst_info(der: &[u8]) -> Option<TstInfo> {
    let seq = tlv::single(der).filter(|t| t.tag == 0x30)?;
    let fields = tlv::children(seq.content)?;
    let [version, policy, imprint, serial, gen_time, ..] = fields.as_slice() else {
        return None;
    };
    if (version.tag, version.content) != (0x02, &[1u8][..])
        || serial.tag != 0x02
        || gen_time.tag != 0x18
    {
        return None;
    }
    let policy = Oid::from_der(policy.whole).ok()?;
    let [algorithm, hashed] = tlv::children(imprint.content)?.try_into().ok()?;
    if hashed.tag != 0x04 {
        return None;
    }
    Some(TstInfo {
        policy,
        imprint_algorithm: AlgorithmIdentifierOwned::from_der(algorithm.whole).ok()?,
        imprint: hashed.content.to_vec(),
        serial: serial.content.to_vec(),
        gen_time: generalized_time(gen_time.content)?,
    })
}

/// `YYYYMMDDHHMMSS[.f+]Z` (RFC 3161 allows fractional seconds, which DER GeneralizedTime
/// parsers built for X.509 refuse).
fn generalized_time(text: &[u8]) -> Option<DateTime<Utc>> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) if !f.is_empty() && f.len() <= 9 && !f.ends_with('0') => (w, f),
        Some(_) => return None,
        None => (text, ""),
    };
    if whole.len() != 14
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| whole.get(range)?.parse::<u32>().ok();
    let year = i32::try_from(num(0..4)?).ok()?;
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse::<u32>().ok()?
    };
    let naive = NaiveDate::from_ymd_opt(year, num(4..6)?, num(6..8)?)?.and_hms_nano_opt(
        num(8..10)?,
        num(10..12)?,
        num(12..14)?,
        nanos,
    )?;
    Some(naive.and_utc())
}

/// The signer's `message-digest` and `content-type` attributes.
pub(super) fn signed_attribute(signer: &SignerInfo, oid: Oid) -> Option<Vec<u8>> {
    let attrs = signer.signed_attrs.as_ref()?;
    let mut matching = attrs.iter().filter(|a| a.oid == oid);
    let attr = matching.next()?;
    if matching.next().is_some() {
        return None;
    }
    let [value] = attr.values.as_slice() else {
        return None;
    };
    value.to_der().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time_forms() {
        let t = |s: &str| generalized_time(s.as_bytes());
        assert_eq!(
            t("20250612120220Z").unwrap().to_rfc3339(),
            "2025-06-12T12:02:20+00:00"
        );
        assert_eq!(
            t("20250612120220.5Z").unwrap().timestamp_subsec_millis(),
            500
        );
        for bad in [
            "20250612120220",
            "2025061212022Z",
            "20250612120220.Z",
            "20250612120220.50Z",
            "20251312120220Z",
            "2025061212022aZ",
        ] {
            assert!(t(bad).is_none(), "{bad}");
        }
    }
}
