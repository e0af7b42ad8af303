//! The signed documents: Layout (steps, inspections, keys, expiry) and Link (what one step
//! did). SPECS §2.2; python in-toto `models/{layout,link}.py`.
//!
//! These are read only from a payload whose signature has been checked (see
//! [`super::verify`]); reading validates what python in-toto validates when it loads them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::MetadataError;
use super::key::SslibKey;
use super::rules::ArtifactRule;

/// A DigestSet: algorithm name → lowercase hex (`{"sha256": "…"}`).
pub type DigestSet = BTreeMap<String, String>;
/// Artifact path → its hashes.
pub type Artifacts = BTreeMap<String, DigestSet>;

/// Link metadata: the evidence one functionary signed about one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    #[serde(rename = "_type")]
    pub type_: String,
    pub name: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub materials: Artifacts,
    #[serde(default)]
    pub products: Artifacts,
    #[serde(default)]
    pub byproducts: Map<String, Value>,
    #[serde(default)]
    pub environment: Map<String, Value>,
}

impl Link {
    /// A new link for step `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            type_: "link".into(),
            name: name.into(),
            command: Vec::new(),
            materials: Artifacts::new(),
            products: Artifacts::new(),
            byproducts: Map::new(),
            environment: Map::new(),
        }
    }

    /// Reads a link from a (verified) payload.
    pub fn from_value(value: &Value) -> Result<Self, MetadataError> {
        check_type(value, "link")?;
        let link: Link = serde_json::from_value(value.clone()).map_err(|e| field("link", e))?;
        Ok(link)
    }

    /// The JSON value that is signed (every field, so python's canonical form is the same).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A step of the supply chain.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub threshold: i64,
    pub pubkeys: Vec<String>,
    pub expected_command: Vec<String>,
    pub expected_materials: Vec<ArtifactRule>,
    pub expected_products: Vec<ArtifactRule>,
}

/// An inspection: a command the verifier runs, whose link is checked with rules too.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub name: String,
    pub run: Vec<String>,
    pub expected_materials: Vec<ArtifactRule>,
    pub expected_products: Vec<ArtifactRule>,
}

/// A validated layout.
#[derive(Debug, Clone)]
pub struct Layout {
    pub steps: Vec<Step>,
    pub inspect: Vec<Inspection>,
    /// Functionary keys by the key id written in the layout.
    pub keys: BTreeMap<String, SslibKey>,
    /// As written.
    pub expires: String,
    pub expires_at: DateTime<Utc>,
    pub readme: String,
}

#[derive(Deserialize)]
struct LayoutWire {
    #[serde(default)]
    steps: Vec<StepWire>,
    #[serde(default)]
    inspect: Vec<InspectionWire>,
    #[serde(default)]
    keys: BTreeMap<String, Value>,
    /// Required here. python in-toto reads a missing `expires` as "one month from whenever
    /// the layout is read", i.e. never expiring; custody refuses such a layout.
    expires: Option<String>,
    #[serde(default)]
    readme: String,
}

#[derive(Deserialize)]
struct StepWire {
    #[serde(rename = "_type")]
    type_: String,
    name: String,
    #[serde(default = "one")]
    threshold: i64,
    #[serde(default)]
    pubkeys: Vec<String>,
    #[serde(default)]
    expected_command: Vec<String>,
    #[serde(default)]
    expected_materials: Vec<Vec<String>>,
    #[serde(default)]
    expected_products: Vec<Vec<String>>,
}

#[derive(Deserialize)]
struct InspectionWire {
    #[serde(rename = "_type")]
    type_: String,
    name: String,
    #[serde(default)]
    run: Vec<String>,
    #[serde(default)]
    expected_materials: Vec<Vec<String>>,
    #[serde(default)]
    expected_products: Vec<Vec<String>>,
}

fn one() -> i64 {
    1
}

fn field(what: &str, e: impl std::fmt::Display) -> MetadataError {
    MetadataError::Field {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

fn check_type(value: &Value, expected: &'static str) -> Result<(), MetadataError> {
    match value.get("_type").and_then(Value::as_str) {
        Some(found) if found == expected => Ok(()),
        found => Err(MetadataError::WrongType {
            found: found.unwrap_or("(none)").to_string(),
            expected,
        }),
    }
}

fn rules(list: &[Vec<String>]) -> Result<Vec<ArtifactRule>, MetadataError> {
    list.iter().map(|r| ArtifactRule::parse(r)).collect()
}

/// `expires`: in-toto writes `YYYY-MM-DDTHH:MM:SSZ`; any RFC 3339 time is accepted.
pub fn parse_expires(text: &str) -> Result<DateTime<Utc>, MetadataError> {
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ") {
        return Ok(t.and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| field("layout `expires`", format!("{text:?}: {e}")))
}

impl Layout {
    /// Reads and validates a layout from a (verified) payload.
    pub fn from_value(value: &Value) -> Result<Self, MetadataError> {
        check_type(value, "layout")?;
        let wire: LayoutWire =
            serde_json::from_value(value.clone()).map_err(|e| field("layout", e))?;
        let expires = wire.expires.ok_or_else(|| {
            field(
                "layout",
                "it has no `expires` (python in-toto would treat it as never expiring); sign a layout with an expiry",
            )
        })?;
        let mut keys = BTreeMap::new();
        for (keyid, object) in &wire.keys {
            keys.insert(keyid.clone(), SslibKey::from_layout(keyid, object)?);
        }
        let mut names = BTreeSet::new();
        let mut steps = Vec::with_capacity(wire.steps.len());
        for s in wire.steps {
            if s.type_ != "step" {
                return Err(field(
                    "step",
                    format!("`_type` is {:?}, expected \"step\"", s.type_),
                ));
            }
            if !names.insert(s.name.clone()) {
                return Err(field(
                    "layout",
                    format!("step name {:?} is not unique", s.name),
                ));
            }
            if let Some(bad) = s.pubkeys.iter().find(|k| !is_hex(k)) {
                return Err(field(
                    &format!("step {:?}", s.name),
                    format!("pubkey {bad:?} is not a hex key id"),
                ));
            }
            steps.push(Step {
                expected_materials: rules(&s.expected_materials)?,
                expected_products: rules(&s.expected_products)?,
                name: s.name,
                threshold: s.threshold,
                pubkeys: s.pubkeys,
                expected_command: s.expected_command,
            });
        }
        let mut inspect = Vec::with_capacity(wire.inspect.len());
        for i in wire.inspect {
            if i.type_ != "inspection" {
                return Err(field(
                    "inspection",
                    format!("`_type` is {:?}, expected \"inspection\"", i.type_),
                ));
            }
            if !names.insert(i.name.clone()) {
                return Err(field(
                    "layout",
                    format!("inspection name {:?} is not unique", i.name),
                ));
            }
            inspect.push(Inspection {
                expected_materials: rules(&i.expected_materials)?,
                expected_products: rules(&i.expected_products)?,
                name: i.name,
                run: i.run,
            });
        }
        Ok(Self {
            steps,
            inspect,
            keys,
            expires_at: parse_expires(&expires)?,
            expires,
            readme: wire.readme,
        })
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}
