//! SLSA Provenance v1 predicate (v1.0, v1.1 and v1.2 share one `predicateType`).
//!
//! Spec: slsa-framework/slsa `docs/spec/v1.1/provenance.md` (SPECS §3.1). Unset, null and empty
//! are treated alike; unknown fields are ignored. Required for Build L1: `buildDefinition`,
//! `runDetails`, `buildDefinition.buildType`, `buildDefinition.externalParameters`,
//! `runDetails.builder`, `runDetails.builder.id`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DigestCheck, ResourceDescriptor, Statement, StatementError, null_as_default};

/// `predicateType` of SLSA Provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// The SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

/// What the build did: the inputs a verifier compares against expectations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    /// Everything the tenant controls. Verifiers SHOULD reject unexpected fields here.
    pub external_parameters: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_parameters: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// Who ran the build and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub byproducts: Vec<ResourceDescriptor>,
}

/// The build platform. `id` alone determines the SLSA Build level a verifier grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    pub id: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub version: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub builder_dependencies: Vec<ResourceDescriptor>,
}

/// Optional run metadata; timestamps are RFC 3339.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<DateTime<Utc>>,
}

/// Why a predicate is not usable SLSA Provenance v1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvenanceError {
    #[error("the predicate type is {found:?}, not \"{SLSA_PROVENANCE_V1}\"")]
    WrongPredicateType { found: String },
    #[error("the SLSA provenance predicate does not match the v1 schema: {source}")]
    Schema { source: serde_json::Error },
    #[error("SLSA provenance `{field}` is empty; Build L1 requires it")]
    EmptyRequiredField { field: &'static str },
    #[error("invalid resource descriptor in SLSA provenance: {source}")]
    ResourceDescriptor {
        #[source]
        source: StatementError,
    },
}

impl Provenance {
    /// Deserializes and checks a predicate value (the caller has checked `predicateType`).
    pub fn from_predicate(predicate: &serde_json::Value) -> Result<Self, ProvenanceError> {
        let provenance: Self = serde_json::from_value(predicate.clone())
            .map_err(|source| ProvenanceError::Schema { source })?;
        provenance.validate()?;
        Ok(provenance)
    }

    /// Extracts the provenance from a Statement, checking its `predicateType`.
    pub fn from_statement(statement: &Statement) -> Result<Self, ProvenanceError> {
        if statement.predicate_type != SLSA_PROVENANCE_V1 {
            return Err(ProvenanceError::WrongPredicateType {
                found: statement.predicate_type.clone(),
            });
        }
        Self::from_predicate(&statement.predicate)
    }

    /// Build L1 required fields are non-empty; every resource descriptor is well formed.
    pub fn validate(&self) -> Result<(), ProvenanceError> {
        if self.build_definition.build_type.is_empty() {
            return Err(ProvenanceError::EmptyRequiredField {
                field: "buildDefinition.buildType",
            });
        }
        if self.run_details.builder.id.is_empty() {
            return Err(ProvenanceError::EmptyRequiredField {
                field: "runDetails.builder.id",
            });
        }
        let lists = [
            (
                "buildDefinition.resolvedDependencies",
                &self.build_definition.resolved_dependencies,
            ),
            (
                "runDetails.builder.builderDependencies",
                &self.run_details.builder.builder_dependencies,
            ),
            ("runDetails.byproducts", &self.run_details.byproducts),
        ];
        for (name, list) in lists {
            for (i, rd) in list.iter().enumerate() {
                rd.validate_at(&format!("{name}[{i}]"), DigestCheck::Strict)
                    .map_err(|source| ProvenanceError::ResourceDescriptor { source })?;
            }
        }
        Ok(())
    }
}
