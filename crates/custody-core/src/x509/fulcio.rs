//! The Fulcio certificate profile (SPECS §4.3): the signer's identity (the one SAN) and the
//! OIDC claims Fulcio copies into extensions under `1.3.6.1.4.1.57264.1`.
//!
//! Gotcha (SPECS §11.7): extensions `.1.1`–`.1.6` hold **raw** UTF-8 bytes; `.1.8` and later
//! hold a DER UTF8String. Reading one kind as the other would silently change the value.

use der::Decode;
use der::asn1::{ObjectIdentifier as Oid, Utf8StringRef};
use serde::Serialize;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::cert::Cert;
use super::{CertError, oids};

/// The signer's identity: the certificate's single subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum SubjectAlternativeName {
    /// rfc822Name: an email address (OIDC providers with verified email).
    Email(String),
    /// uniformResourceIdentifier: a workload identity (GitHub workflow, SPIFFE, …).
    Uri(String),
    /// otherName `1.3.6.1.4.1.57264.1.7`: a username.
    Username(String),
}

impl SubjectAlternativeName {
    /// The identity as a string, whatever its kind.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(s) | Self::Uri(s) | Self::Username(s) => s,
        }
    }

    /// Reads the SAN of a DER certificate (no trust implied: verify the chain first).
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, CertError> {
        Self::from_cert(&Cert::parse(der, "signing certificate")?)
    }

    pub(crate) fn from_cert(cert: &Cert) -> Result<Self, CertError> {
        let Some(ext) = cert.extension(oids::SUBJECT_ALT_NAME)? else {
            // The identity in the subject CN is not an identity: Fulcio never puts it there.
            return Err(CertError::SanCount { count: 0 });
        };
        let san = SubjectAltName::from_der(ext.extn_value.as_bytes()).map_err(|source| {
            CertError::MalformedExtension {
                subject: cert.subject(),
                oid: oids::SUBJECT_ALT_NAME.to_string(),
                source,
            }
        })?;
        let [name] = san.0.as_slice() else {
            return Err(CertError::SanCount { count: san.0.len() });
        };
        match name {
            GeneralName::Rfc822Name(s) => Ok(Self::Email(s.to_string())),
            GeneralName::UniformResourceIdentifier(s) => Ok(Self::Uri(s.to_string())),
            GeneralName::OtherName(other) if other.type_id == oids::FULCIO_USERNAME => other
                .value
                .decode_as::<Utf8StringRef<'_>>()
                .map(|s| Self::Username(s.as_str().to_string()))
                .map_err(|_| CertError::MalformedFulcioExtension {
                    oid: oids::FULCIO_USERNAME.to_string(),
                    name: "username",
                    expected: "a DER UTF8String",
                }),
            GeneralName::OtherName(_) => Err(CertError::UnsupportedSan {
                kind: "otherName of an unknown type",
            }),
            GeneralName::DnsName(_) => Err(CertError::UnsupportedSan { kind: "DNS name" }),
            GeneralName::DirectoryName(_) => Err(CertError::UnsupportedSan {
                kind: "directory name",
            }),
            GeneralName::IpAddress(_) => Err(CertError::UnsupportedSan { kind: "IP address" }),
            GeneralName::EdiPartyName(_) | GeneralName::RegisteredId(_) => {
                Err(CertError::UnsupportedSan {
                    kind: "EDI party name or registered ID",
                })
            }
        }
    }
}

/// The OIDC claims Fulcio recorded in the certificate, for policy. `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FulcioClaims {
    /// OIDC issuer: `.1.8`, or the deprecated `.1.1` for older certificates. When both are
    /// present they must agree, or the certificate is refused.
    pub issuer: Option<String>,
    /// Deprecated `.1.2`–`.1.6` (raw bytes): GitHub workflow trigger, SHA, name, repository, ref.
    pub github_workflow_trigger: Option<String>,
    pub github_workflow_sha: Option<String>,
    pub github_workflow_name: Option<String>,
    pub github_workflow_repository: Option<String>,
    pub github_workflow_ref: Option<String>,
    pub build_signer_uri: Option<String>,
    pub build_signer_digest: Option<String>,
    pub runner_environment: Option<String>,
    pub source_repository_uri: Option<String>,
    pub source_repository_digest: Option<String>,
    pub source_repository_ref: Option<String>,
    pub source_repository_identifier: Option<String>,
    pub source_repository_owner_uri: Option<String>,
    pub source_repository_owner_identifier: Option<String>,
    pub build_config_uri: Option<String>,
    pub build_config_digest: Option<String>,
    pub build_trigger: Option<String>,
    pub run_invocation_uri: Option<String>,
    pub source_repository_visibility_at_signing: Option<String>,
    pub deployment_environment: Option<String>,
    /// `.1.24`: the token's raw `sub` claim.
    pub token_subject: Option<String>,
}

/// How an extension's value is encoded.
#[derive(Clone, Copy)]
enum Encoding {
    Raw,
    Utf8String,
}

fn fulcio_oid(arc: u32) -> Option<Oid> {
    Oid::new(&format!("1.3.6.1.4.1.57264.1.{arc}")).ok()
}

impl FulcioClaims {
    /// Reads the claims of a DER certificate (no trust implied: verify the chain first).
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, CertError> {
        Self::from_cert(&Cert::parse(der, "signing certificate")?)
    }

    pub(crate) fn from_cert(cert: &Cert) -> Result<Self, CertError> {
        let read = |arc: u32,
                    name: &'static str,
                    encoding: Encoding|
         -> Result<Option<String>, CertError> {
            let Some(oid) = fulcio_oid(arc) else {
                return Ok(None);
            };
            let Some(ext) = cert.extension(oid)? else {
                return Ok(None);
            };
            let bytes = ext.extn_value.as_bytes();
            let value = match encoding {
                Encoding::Raw => std::str::from_utf8(bytes).ok(),
                Encoding::Utf8String => Utf8StringRef::from_der(bytes).ok().map(|s| s.as_str()),
            };
            value
                .map(|v| Some(v.to_string()))
                .ok_or(CertError::MalformedFulcioExtension {
                    oid: oid.to_string(),
                    name,
                    expected: match encoding {
                        Encoding::Raw => "UTF-8 text",
                        Encoding::Utf8String => "a DER UTF8String",
                    },
                })
        };
        use Encoding::{Raw, Utf8String as Der};
        let v1 = read(1, "issuer (v1)", Raw)?;
        let v2 = read(8, "issuer", Der)?;
        let issuer = match (v1, v2) {
            (Some(v1), Some(v2)) if v1 != v2 => {
                return Err(CertError::IssuerExtensionsDisagree { v1, v2 });
            }
            (v1, v2) => v2.or(v1),
        };
        Ok(Self {
            issuer,
            github_workflow_trigger: read(2, "GitHub workflow trigger", Raw)?,
            github_workflow_sha: read(3, "GitHub workflow SHA", Raw)?,
            github_workflow_name: read(4, "GitHub workflow name", Raw)?,
            github_workflow_repository: read(5, "GitHub workflow repository", Raw)?,
            github_workflow_ref: read(6, "GitHub workflow ref", Raw)?,
            build_signer_uri: read(9, "build signer URI", Der)?,
            build_signer_digest: read(10, "build signer digest", Der)?,
            runner_environment: read(11, "runner environment", Der)?,
            source_repository_uri: read(12, "source repository URI", Der)?,
            source_repository_digest: read(13, "source repository digest", Der)?,
            source_repository_ref: read(14, "source repository ref", Der)?,
            source_repository_identifier: read(15, "source repository identifier", Der)?,
            source_repository_owner_uri: read(16, "source repository owner URI", Der)?,
            source_repository_owner_identifier: read(
                17,
                "source repository owner identifier",
                Der,
            )?,
            build_config_uri: read(18, "build config URI", Der)?,
            build_config_digest: read(19, "build config digest", Der)?,
            build_trigger: read(20, "build trigger", Der)?,
            run_invocation_uri: read(21, "run invocation URI", Der)?,
            source_repository_visibility_at_signing: read(22, "source repository visibility", Der)?,
            deployment_environment: read(23, "deployment environment", Der)?,
            token_subject: read(24, "token subject", Der)?,
        })
    }
}
