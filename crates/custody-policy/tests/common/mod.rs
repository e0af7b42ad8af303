//! Signing real bundles for the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use chrono::{DateTime, Utc};
use custody_core::bundle::Bundle;
use custody_core::digest::Sha256Digest;
use custody_core::dsse::{self, Envelope, EnvelopeSignature};
use custody_core::encoding::base64_encode;
use custody_core::intoto::{ResourceDescriptor, Statement};
use custody_core::keys::{KeyAlgorithm, SignedData, SigningKey};
use custody_policy::{Candidate, Gate, Policy, PolicyFile, TrustSet, Verdict};
use serde_json::{Value, json};

/// A DSSE bundle of `statement`, signed with `key` (key hint, no log entry).
pub fn signed_statement(key: &SigningKey, statement: &Statement) -> Vec<u8> {
    let payload = statement.to_json_bytes();
    let sig = key
        .sign(SignedData::Message(&dsse::pae(
            dsse::IN_TOTO_PAYLOAD_TYPE,
            &payload,
        )))
        .unwrap();
    let hint = base64_encode(&key.public_key().key_id().0);
    let env = Envelope {
        payload,
        payload_type: dsse::IN_TOTO_PAYLOAD_TYPE.into(),
        signatures: vec![EnvelopeSignature {
            keyid: hint.clone(),
            sig,
        }],
    };
    Bundle::new_dsse_v03(hint, env).to_json().into_bytes()
}

/// SLSA provenance v1 for `artifact`, built by `builder`, as custody build writes it.
pub fn provenance_statement(artifact: &Sha256Digest, builder: &str) -> Statement {
    Statement::new_v1(
        vec![ResourceDescriptor::from_sha256("app.bin", artifact)],
        "https://slsa.dev/provenance/v1",
        json!({"buildDefinition": {"buildType": "https://custody.dev/build/v1",
                 "externalParameters": {"hermetic": true, "source": {"repository": "https://github.com/acme/app", "ref": "refs/heads/main", "dirty": false}}},
               "runDetails": {"builder": {"id": builder}, "metadata": {"finishedOn": "2026-11-20T00:00:00Z"}}}),
    )
}

pub fn signed_provenance(key: &SigningKey, artifact: &Sha256Digest) -> Vec<u8> {
    signed_statement(
        key,
        &provenance_statement(artifact, "https://custody.dev/builder/ci"),
    )
}

/// An approval (`https://custody.dev/approval/v1`) of `artifact` for `environment`.
pub fn approval_statement(
    artifact: &Sha256Digest,
    environment: &str,
    approver: &str,
    approved_at: &str,
) -> Statement {
    Statement::new_v1(
        vec![ResourceDescriptor::from_sha256("app.bin", artifact)],
        "https://custody.dev/approval/v1",
        json!({"environment": environment, "approver": approver, "approvedAt": approved_at, "comment": Value::Null}),
    )
}

pub fn key() -> SigningKey {
    SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap()
}

/// The key's id (lowercase hex), as policy sees it.
pub fn id(k: &SigningKey) -> String {
    k.public_key().key_id().to_string()
}

/// The decision time of these tests.
pub fn now() -> DateTime<Utc> {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

pub fn candidate(source: &str, bytes: Vec<u8>) -> Candidate {
    Candidate {
        source: source.into(),
        bytes,
    }
}

/// The codes of a verdict's denies, in order.
pub fn codes(v: &Verdict) -> Vec<&str> {
    v.denies.iter().map(|f| f.code.as_str()).collect()
}

/// A gate denying on `data.custody.lib.violations`, trusting `trusted` (their public keys, and
/// their key ids as signers), with `settings` merged into `data.custody.config`.
pub fn library_gate(trusted: &[&SigningKey], settings: Value) -> Gate {
    let mut config =
        json!({"signers": {"keys": trusted.iter().map(|k| id(k)).collect::<Vec<_>>()}});
    if let (Some(c), Some(s)) = (config.as_object_mut(), settings.as_object()) {
        c.extend(s.clone());
    }
    let policy = Policy::from_files(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text:
                "package custody.gate\n\ndeny contains v if some v in data.custody.lib.violations\n"
                    .into(),
        }],
        json!({"custody": {"config": config}}),
    )
    .unwrap();
    Gate {
        policy,
        trust: TrustSet {
            keys: trusted.iter().map(|k| k.public_key()).collect(),
            root: None,
            root_digest: None,
        },
    }
}

/// A small JSON Schema checker: type, required, additionalProperties: false, properties,
/// items, enum, $ref (local) and pattern-free. Returns the first violation's path.
pub fn check(schema: &Value, root: &Value, v: &Value, path: &str) -> Result<(), String> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => root.pointer(r.trim_start_matches('#')).unwrap(),
        None => schema,
    };
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !(types.contains(&actual) || actual == "integer" && types.contains(&"number")) {
            return Err(format!("{path}: {actual} is not {types:?}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{path}: {v} not in {e:?}"));
        }
    }
    if let Value::Object(m) = v {
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !m.contains_key(r.as_str().unwrap()) {
                return Err(format!("{path}: missing {r}"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, child) in m {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(s, root, child, &format!("{path}.{k}"))?,
                None if schema.get("additionalProperties") == Some(&json!(false)) => {
                    return Err(format!("{path}: {k} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(a), Some(items)) = (v, schema.get("items")) {
        for (i, child) in a.iter().enumerate() {
            check(items, root, child, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

pub fn schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/policy-input.schema.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
