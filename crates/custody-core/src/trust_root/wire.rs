//! Protobuf-JSON shape of `TrustedRoot` (both directions) and its checked conversion.

use der::Decode as _;
use serde::{Deserialize, Serialize};

use super::{
    CertificateAuthority, DistinguishedName, LogPublicKey, TRUSTED_ROOT_V0_1,
    TRUSTED_ROOT_V0_1_LEGACY, TRUSTED_ROOT_V0_2, TransparencyLogInstance, TrustRootError,
    TrustedRoot, ValidityPeriod,
};
use crate::bundle::HashAlgorithm;
use crate::bundle::protojson::{self, ScalarError};

const DOCUMENT: &str = "trusted root";
const ACCEPTED: &str = "\"application/vnd.dev.sigstore.trustedroot.v0.2+json\", \
                        \"application/vnd.dev.sigstore.trustedroot.v0.1+json\" or \
                        \"application/vnd.dev.sigstore.trustedroot+json;version=0.1\"";

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TrustedRootWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tlogs: Option<Vec<TlogWire>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_authorities: Option<Vec<CaWire>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ctlogs: Option<Vec<TlogWire>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_authorities: Option<Vec<CaWire>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<PublicKeyWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_id: Option<KeyIdWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint_key_id: Option<KeyIdWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_bytes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_details: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_for: Option<ValidityPeriod>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyIdWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<SubjectWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_chain: Option<ChainWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_for: Option<ValidityPeriod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubjectWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    common_name: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ChainWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    certificates: Option<Vec<RawBytesWire>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_bytes: Option<String>,
}

// ---- parsing ------------------------------------------------------------------------------

fn bytes(field: &str, text: Option<&String>) -> Result<Vec<u8>, TrustRootError> {
    let text = text.ok_or_else(|| TrustRootError::MissingField {
        field: field.to_string(),
    })?;
    protojson::bytes(text).map_err(|e| match e {
        ScalarError::Base64(source) => TrustRootError::InvalidBase64 {
            field: field.to_string(),
            source,
        },
        ScalarError::Integer(_) => TrustRootError::MissingField {
            field: field.to_string(),
        },
    })
}

pub(super) fn parse_trusted_root(input: &[u8]) -> Result<TrustedRoot, TrustRootError> {
    let wire: TrustedRootWire =
        serde_json::from_slice(input).map_err(|e| TrustRootError::json(DOCUMENT, e))?;
    from_wire(wire)
}

pub(super) fn from_wire(wire: TrustedRootWire) -> Result<TrustedRoot, TrustRootError> {
    let media_type = wire.media_type.unwrap_or_default();
    if ![
        TRUSTED_ROOT_V0_1_LEGACY,
        TRUSTED_ROOT_V0_1,
        TRUSTED_ROOT_V0_2,
    ]
    .contains(&media_type.as_str())
    {
        return Err(TrustRootError::UnsupportedMediaType {
            document: DOCUMENT,
            media_type: protojson::shorten(&media_type),
            expected: ACCEPTED,
        });
    }
    let logs = |list: Option<Vec<TlogWire>>, name: &str| -> Result<Vec<_>, TrustRootError> {
        let list = list.unwrap_or_default();
        list.iter()
            .enumerate()
            .map(|(i, t)| parse_tlog(&format!("{name}[{i}]"), t))
            .collect()
    };
    let cas = |list: Option<Vec<CaWire>>, name: &str| -> Result<Vec<_>, TrustRootError> {
        let list = list.unwrap_or_default();
        list.into_iter()
            .enumerate()
            .map(|(i, c)| parse_ca(&format!("{name}[{i}]"), c))
            .collect()
    };
    Ok(TrustedRoot {
        media_type,
        tlogs: logs(wire.tlogs, "tlogs")?,
        certificate_authorities: cas(wire.certificate_authorities, "certificateAuthorities")?,
        ctlogs: logs(wire.ctlogs, "ctlogs")?,
        timestamp_authorities: cas(wire.timestamp_authorities, "timestampAuthorities")?,
    })
}

fn parse_tlog(at: &str, t: &TlogWire) -> Result<TransparencyLogInstance, TrustRootError> {
    let field = |name: &str| format!("{at}.{name}");
    let name = t
        .hash_algorithm
        .as_deref()
        .ok_or_else(|| TrustRootError::MissingField {
            field: field("hashAlgorithm"),
        })?;
    let hash_algorithm =
        HashAlgorithm::from_name(name).ok_or_else(|| TrustRootError::UnknownHashAlgorithm {
            field: field("hashAlgorithm"),
            value: protojson::shorten(name),
        })?;
    let key = t
        .public_key
        .as_ref()
        .ok_or_else(|| TrustRootError::MissingField {
            field: field("publicKey"),
        })?;
    let raw_bytes = match &key.raw_bytes {
        None => None,
        Some(text) => {
            let der = bytes(&field("publicKey.rawBytes"), Some(text))?;
            let details = key.key_details.as_deref().unwrap_or_default();
            check_public_key(details, &der).map_err(|source| TrustRootError::InvalidPublicKey {
                field: field("publicKey.rawBytes"),
                source,
            })?;
            Some(der)
        }
    };
    let log_id = bytes(
        &field("logId.keyId"),
        t.log_id.as_ref().and_then(|l| l.key_id.as_ref()),
    )?;
    let checkpoint_key_id = match &t.checkpoint_key_id {
        None => None,
        Some(k) => Some(bytes(&field("checkpointKeyId.keyId"), k.key_id.as_ref())?),
    };
    Ok(TransparencyLogInstance {
        base_url: t.base_url.clone().unwrap_or_default(),
        hash_algorithm,
        public_key: LogPublicKey {
            raw_bytes,
            key_details: key.key_details.clone().unwrap_or_default(),
            valid_for: key.valid_for.clone().unwrap_or_default(),
        },
        log_id,
        checkpoint_key_id,
        operator: t.operator.clone(),
    })
}

/// `PublicKey.raw_bytes` is DER SPKI, except for the deprecated `PKCS1_*` key details, where it is
/// a PKCS#1 `RSAPublicKey` (the staging root's oldest CT log uses one).
fn check_public_key(key_details: &str, der: &[u8]) -> Result<(), der::Error> {
    if key_details.starts_with("PKCS1_") {
        let any = der::asn1::AnyRef::from_der(der)?;
        der::Tagged::tag(&any).assert_eq(der::Tag::Sequence)?;
        return Ok(());
    }
    spki::SubjectPublicKeyInfoRef::from_der(der).map(|_| ())
}

fn parse_ca(at: &str, c: CaWire) -> Result<CertificateAuthority, TrustRootError> {
    let subject = c
        .subject
        .map_or_else(DistinguishedName::default, |s| DistinguishedName {
            organization: s.organization.unwrap_or_default(),
            common_name: s.common_name.unwrap_or_default(),
        });
    let uri = c.uri.unwrap_or_default();
    let authority = if uri.is_empty() {
        format!("{at} ({:?})", subject.common_name)
    } else {
        format!("{at} ({uri})")
    };
    let certificates = c
        .cert_chain
        .and_then(|chain| chain.certificates)
        .unwrap_or_default();
    if certificates.is_empty() {
        return Err(TrustRootError::MissingCertificate { authority });
    }
    let mut cert_chain = Vec::with_capacity(certificates.len());
    for (index, cert) in certificates.iter().enumerate() {
        let der = bytes(
            &format!("{at}.certChain.certificates[{index}].rawBytes"),
            cert.raw_bytes.as_ref(),
        )?;
        x509_cert::Certificate::from_der(&der).map_err(|source| {
            TrustRootError::InvalidCertificate {
                authority: authority.clone(),
                index,
                source,
            }
        })?;
        cert_chain.push(der);
    }
    Ok(CertificateAuthority {
        subject,
        uri,
        cert_chain,
        valid_for: c.valid_for.unwrap_or_default(),
        operator: c.operator,
    })
}

pub(super) fn parse_certificate_authority(
    input: &[u8],
) -> Result<CertificateAuthority, TrustRootError> {
    let wire: CaWire = serde_json::from_slice(input)
        .map_err(|e| TrustRootError::json("certificate authority", e))?;
    parse_ca("certificate authority", wire)
}

// ---- serializing --------------------------------------------------------------------------

fn b64(bytes: &[u8]) -> Option<String> {
    Some(protojson::encode_bytes(bytes))
}

fn nonempty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn tlog_wire(t: &TransparencyLogInstance) -> TlogWire {
    TlogWire {
        base_url: nonempty(&t.base_url),
        hash_algorithm: Some(t.hash_algorithm.as_str().to_string()),
        public_key: Some(PublicKeyWire {
            raw_bytes: t.public_key.raw_bytes.as_deref().and_then(b64),
            key_details: nonempty(&t.public_key.key_details),
            valid_for: Some(t.public_key.valid_for.clone()),
        }),
        log_id: Some(KeyIdWire {
            key_id: b64(&t.log_id),
        }),
        checkpoint_key_id: t
            .checkpoint_key_id
            .as_ref()
            .map(|k| KeyIdWire { key_id: b64(k) }),
        operator: t.operator.clone(),
    }
}

fn ca_wire(c: &CertificateAuthority) -> CaWire {
    CaWire {
        subject: Some(SubjectWire {
            organization: nonempty(&c.subject.organization),
            common_name: nonempty(&c.subject.common_name),
        }),
        uri: nonempty(&c.uri),
        cert_chain: Some(ChainWire {
            certificates: Some(
                c.cert_chain
                    .iter()
                    .map(|d| RawBytesWire { raw_bytes: b64(d) })
                    .collect(),
            ),
        }),
        valid_for: Some(c.valid_for.clone()),
        operator: c.operator.clone(),
    }
}

pub(super) fn to_wire(root: &TrustedRoot) -> TrustedRootWire {
    let some_if = |empty: bool| !empty;
    TrustedRootWire {
        media_type: Some(root.media_type.clone()),
        tlogs: some_if(root.tlogs.is_empty()).then(|| root.tlogs.iter().map(tlog_wire).collect()),
        certificate_authorities: some_if(root.certificate_authorities.is_empty())
            .then(|| root.certificate_authorities.iter().map(ca_wire).collect()),
        ctlogs: some_if(root.ctlogs.is_empty())
            .then(|| root.ctlogs.iter().map(tlog_wire).collect()),
        timestamp_authorities: some_if(root.timestamp_authorities.is_empty())
            .then(|| root.timestamp_authorities.iter().map(ca_wire).collect()),
    }
}

pub(super) fn serialize_trusted_root(root: &TrustedRoot) -> String {
    // Serializing strings, vectors and timestamps cannot fail.
    serde_json::to_string(&to_wire(root)).unwrap_or_default()
}
