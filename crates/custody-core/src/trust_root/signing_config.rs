//! `SigningConfig` v0.2 (where to sign: CA, OIDC, Rekor, TSA URLs) and `ClientTrustConfig` v0.1
//! (a trusted root plus a signing config), from `sigstore_trustroot.proto`.

use serde::{Deserialize, Serialize};

use super::wire::{self, TrustedRootWire};
use super::{TrustRootError, TrustedRoot, ValidityPeriod};

/// Media type of a signing config v0.2.
pub const SIGNING_CONFIG_V0_2: &str = "application/vnd.dev.sigstore.signingconfig.v0.2+json";
/// Media type of a client trust config v0.1.
pub const CLIENT_TRUST_CONFIG_V0_1: &str =
    "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";

/// Service endpoints a signer uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningConfig {
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_urls: Vec<Service>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oidc_urls: Vec<Service>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rekor_tlog_urls: Vec<Service>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tsa_urls: Vec<Service>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekor_tlog_config: Option<ServiceConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsa_config: Option<ServiceConfiguration>,
}

/// One service endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub url: String,
    /// e.g. 1 for Rekor v1, 2 for Rekor v2.
    #[serde(default)]
    pub major_api_version: u32,
    #[serde(default)]
    pub valid_for: ValidityPeriod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

/// How many of the listed services to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfiguration {
    pub selector: ServiceSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// `ServiceSelector` enum, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceSelector {
    #[serde(rename = "ALL")]
    All,
    #[serde(rename = "ANY")]
    Any,
    #[serde(rename = "EXACT")]
    Exact,
}

impl SigningConfig {
    /// Parses a signing config, refusing media types other than v0.2.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustRootError> {
        let config: Self =
            serde_json::from_slice(bytes).map_err(|e| TrustRootError::json("signing config", e))?;
        config.check_media_type()?;
        Ok(config)
    }

    fn check_media_type(&self) -> Result<(), TrustRootError> {
        if self.media_type != SIGNING_CONFIG_V0_2 {
            return Err(TrustRootError::UnsupportedMediaType {
                document: "signing config",
                media_type: crate::bundle::protojson::shorten(&self.media_type),
                expected: "\"application/vnd.dev.sigstore.signingconfig.v0.2+json\"",
            });
        }
        Ok(())
    }

    /// Protobuf-JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A trusted root and a signing config, delivered together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTrustConfig {
    pub media_type: String,
    pub trusted_root: TrustedRoot,
    pub signing_config: SigningConfig,
}

/// Protobuf JSON parsers accept the proto field name as well as the camelCase one; sigstore-python's
/// own `config.v1.json` writes `signing_config`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientTrustConfigWire {
    media_type: Option<String>,
    #[serde(alias = "trusted_root")]
    trusted_root: Option<TrustedRootWire>,
    #[serde(alias = "signing_config")]
    signing_config: Option<SigningConfig>,
}

impl ClientTrustConfig {
    /// Parses a client trust config, refusing other media types.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustRootError> {
        let wire: ClientTrustConfigWire = serde_json::from_slice(bytes)
            .map_err(|e| TrustRootError::json("client trust config", e))?;
        let media_type = wire.media_type.unwrap_or_default();
        if media_type != CLIENT_TRUST_CONFIG_V0_1 {
            return Err(TrustRootError::UnsupportedMediaType {
                document: "client trust config",
                media_type: crate::bundle::protojson::shorten(&media_type),
                expected: "\"application/vnd.dev.sigstore.clienttrustconfig.v0.1+json\"",
            });
        }
        let root = wire.trusted_root.ok_or(TrustRootError::MissingField {
            field: "trustedRoot".into(),
        })?;
        let signing_config = wire.signing_config.ok_or(TrustRootError::MissingField {
            field: "signingConfig".into(),
        })?;
        signing_config.check_media_type()?;
        Ok(Self {
            media_type,
            trusted_root: wire::from_wire(root)?,
            signing_config,
        })
    }
}
