//! The verification algorithm of python in-toto `verifylib.in_toto_verify` (SPECS §2.3),
//! step by step, with its failure reasons.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::VerifyError;
use super::key::SslibKey;
use super::metadata::Metadata;
use super::model::{Inspection, Layout, Link, parse_expires};
use super::params::substitute_layout;
use super::rules::{ArtifactType, verify_item_rules};

/// Runs an inspection in the verifier's working directory and reports what it did as a link
/// (materials and products recorded from `.`, byproducts with `return-value`).
pub trait InspectionRunner {
    fn run(&mut self, inspection: &Inspection) -> Result<Link, VerifyError>;
}

/// What the verifier is told besides the layout and its keys.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The directory holding `<step>.<keyid[:8]>.link` files.
    pub link_dir: PathBuf,
    /// The time to judge expiry by.
    pub now: DateTime<Utc>,
    /// Values for the layout's `{NAME}` parameters (python in-toto's substitution
    /// parameters). Substitution always runs on the root layout, so a layout that uses a
    /// parameter missing here fails; sublayouts are not substituted, as in python.
    pub parameters: BTreeMap<String, String>,
}

impl VerifyOptions {
    /// Links in `link_dir`, expiry judged by the clock now.
    pub fn at_now(link_dir: impl Into<PathBuf>) -> Self {
        Self {
            link_dir: link_dir.into(),
            now: Utc::now(),
            parameters: BTreeMap::new(),
        }
    }

    /// The same, with values for the layout's parameters.
    pub fn with_parameters(mut self, parameters: BTreeMap<String, String>) -> Self {
        self.parameters = parameters;
        self
    }
}

/// One step as verified: which functionaries' links counted.
#[derive(Debug, Clone)]
pub struct VerifiedStep {
    pub name: String,
    pub threshold: i64,
    pub functionaries: Vec<String>,
}

/// A supply chain that verified.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    /// The layout key ids whose signatures verified.
    pub layout_keyids: Vec<String>,
    pub expires: String,
    pub steps: Vec<VerifiedStep>,
    pub inspections: Vec<String>,
    /// Things python in-toto only warns about (command misalignment).
    pub warnings: Vec<String>,
    /// Materials of the first step, products of the last (`get_summary_link`).
    pub summary: Link,
}

/// Loads a link or layout file for the verifier.
pub fn load_metadata(path: &Path) -> Result<Option<Metadata>, VerifyError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(VerifyError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    Metadata::from_json(&bytes)
        .map(Some)
        .map_err(|source| VerifyError::Malformed {
            file: path.display().to_string(),
            source,
        })
}

fn link_file(step: &str, keyid: &str) -> String {
    let short: String = keyid.chars().take(8).collect();
    format!("{step}.{short}.link")
}

/// Verifies a signed layout, its links and inspections. `layout_keys` are the keys the
/// layout must be signed by: **every** one of them (python in-toto `verify_metadata_signatures`).
pub fn in_toto_verify(
    metadata: &Metadata,
    layout_keys: &[SslibKey],
    options: &VerifyOptions,
    runner: &mut dyn InspectionRunner,
) -> Result<VerifiedChain, VerifyError> {
    verify_chain(metadata, layout_keys, options, runner, "")
}

fn verify_chain(
    metadata: &Metadata,
    layout_keys: &[SslibKey],
    options: &VerifyOptions,
    runner: &mut dyn InspectionRunner,
    step_name: &str,
) -> Result<VerifiedChain, VerifyError> {
    // 1. Layout signatures: at least one key, and every key must have verified.
    if layout_keys.is_empty() {
        return Err(VerifyError::NoLayoutKeys);
    }
    let mut payload: Option<&Value> = None;
    for key in layout_keys {
        payload = Some(metadata.verify(key, &key.candidate_key_ids())?);
    }
    let payload = payload.ok_or(VerifyError::NoLayoutKeys)?;

    // 2. Expiry, before substitution as in python: `expires <= now` fails.
    if let Some(expires) = payload.get("expires").and_then(Value::as_str) {
        if parse_expires(expires).is_ok_and(|at| at <= options.now) {
            return Err(VerifyError::LayoutExpired {
                expires: expires.to_string(),
            });
        }
    }
    // 3. Parameter substitution (root layout only, as python passes no parameters down).
    let substituted;
    let payload = if step_name.is_empty() {
        substituted =
            substitute_layout(payload, &options.parameters).map_err(VerifyError::Parameters)?;
        &substituted
    } else {
        payload
    };
    let layout = Layout::from_value(payload).map_err(|source| VerifyError::Malformed {
        file: "layout".into(),
        source,
    })?;
    if layout.expires_at <= options.now {
        return Err(VerifyError::LayoutExpired {
            expires: layout.expires.clone(),
        });
    }

    // 4.–6. Load links, check signatures and thresholds, recurse into sublayouts.
    let mut warnings = Vec::new();
    let mut chain: BTreeMap<String, Vec<(String, Link)>> = BTreeMap::new();
    let mut steps = Vec::with_capacity(layout.steps.len());
    for step in &layout.steps {
        let links = verified_links(&layout, step, options, runner, &mut warnings)?;
        // 7. Command alignment is a warning only.
        for (keyid, link) in &links {
            if link.command != step.expected_command {
                warnings.push(format!(
                    "{}: run command {:?} differs from expected command {:?}",
                    link_file(&step.name, keyid),
                    link.command,
                    step.expected_command
                ));
            }
        }
        // 8. Threshold constraints: every counted link reports the same artifacts.
        if step.threshold > 1 {
            if let Some((first_id, first)) = links.first() {
                for (keyid, link) in &links[1..] {
                    if link.materials != first.materials || link.products != first.products {
                        return Err(VerifyError::DifferentArtifacts {
                            first: link_file(&step.name, first_id),
                            other: link_file(&step.name, keyid),
                        });
                    }
                }
            }
        }
        steps.push(VerifiedStep {
            name: step.name.clone(),
            threshold: step.threshold,
            functionaries: links.iter().map(|(k, _)| k.clone()).collect(),
        });
        chain.insert(step.name.clone(), links);
    }
    let mut reduced: BTreeMap<String, Link> = chain
        .into_iter()
        .filter_map(|(name, links)| links.into_iter().next().map(|(_, link)| (name, link)))
        .collect();

    // 9. Step rules.
    for step in &layout.steps {
        verify_item_rules(
            &step.name,
            ArtifactType::Materials,
            &step.expected_materials,
            &reduced,
        )?;
        verify_item_rules(
            &step.name,
            ArtifactType::Products,
            &step.expected_products,
            &reduced,
        )?;
    }
    let summary = summary_link(&layout, &reduced, step_name);

    // 10. Inspections: run each, require return value 0, then check their rules against the
    // step links and the inspection links together.
    let mut inspections = Vec::with_capacity(layout.inspect.len());
    for inspection in &layout.inspect {
        let link = runner.run(inspection)?;
        check_return_value(inspection, &link)?;
        reduced.insert(inspection.name.clone(), link);
        inspections.push(inspection.name.clone());
    }
    for inspection in &layout.inspect {
        verify_item_rules(
            &inspection.name,
            ArtifactType::Materials,
            &inspection.expected_materials,
            &reduced,
        )?;
        verify_item_rules(
            &inspection.name,
            ArtifactType::Products,
            &inspection.expected_products,
            &reduced,
        )?;
    }
    Ok(VerifiedChain {
        layout_keyids: layout_keys.iter().map(|k| k.keyid.clone()).collect(),
        expires: layout.expires.clone(),
        steps,
        inspections,
        warnings,
        summary,
    })
}

/// Steps 4–6 for one step: the links of authorized functionaries whose signatures verify,
/// at least `threshold` of them (distinct keys), sublayouts replaced by their summary link.
fn verified_links(
    layout: &Layout,
    step: &super::model::Step,
    options: &VerifyOptions,
    runner: &mut dyn InspectionRunner,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, Link)>, VerifyError> {
    let mut found: Vec<(String, Metadata)> = Vec::new();
    for keyid in &step.pubkeys {
        if found.iter().any(|(k, _)| k == keyid) {
            continue;
        }
        let path = options.link_dir.join(link_file(&step.name, keyid));
        if let Some(metadata) = load_metadata(&path)? {
            found.push((keyid.clone(), metadata));
        }
    }
    if (found.len() as i64) < step.threshold {
        return Err(VerifyError::LinkNotFound {
            step: step.name.clone(),
            threshold: step.threshold,
            found: found.len(),
        });
    }
    let mut links = Vec::with_capacity(found.len());
    let mut skipped = Vec::new();
    let warnings_before = warnings.len();
    for (keyid, metadata) in found {
        let file = link_file(&step.name, &keyid);
        let Some(key) = layout.keys.get(&keyid) else {
            warnings.push(format!(
                "{file}: skipped, key '{keyid}' is not in the layout's keys"
            ));
            continue;
        };
        let payload = match metadata.verify(key, std::slice::from_ref(&keyid)) {
            Ok(payload) => payload,
            Err(e) => {
                warnings.push(format!("{file}: skipped: {e}"));
                continue;
            }
        };
        let link = if metadata.payload_type() == Some("layout") {
            // 6. A sublayout: verify it with the functionary's key and its own link directory.
            let sub_options = VerifyOptions {
                link_dir: options.link_dir.join(format!(
                    "{}.{}",
                    step.name,
                    keyid.chars().take(8).collect::<String>()
                )),
                now: options.now,
                parameters: BTreeMap::new(),
            };
            verify_chain(
                &metadata,
                std::slice::from_ref(key),
                &sub_options,
                runner,
                &step.name,
            )
            .map_err(|e| VerifyError::Sublayout {
                step: step.name.clone(),
                source: Box::new(e),
            })?
            .summary
        } else {
            let link = Link::from_value(payload).map_err(|source| VerifyError::Malformed {
                file: file.clone(),
                source,
            })?;
            // Stricter than python in-toto: a link signed for another step does not count.
            if link.name != step.name {
                warnings.push(format!(
                    "{file}: skipped, the link is for step '{}'",
                    link.name
                ));
                continue;
            }
            link
        };
        links.push((keyid, link));
    }
    if (links.len() as i64) < step.threshold {
        skipped.extend(warnings.drain(warnings_before..));
        return Err(VerifyError::Threshold {
            step: step.name.clone(),
            threshold: step.threshold,
            found: links.len(),
            skipped: if skipped.is_empty() {
                String::new()
            } else {
                format!(" (skipped {})", skipped.join("; "))
            },
        });
    }
    Ok(links)
}

/// verifylib `_raise_on_bad_retval`.
fn check_return_value(inspection: &Inspection, link: &Link) -> Result<(), VerifyError> {
    let value = link.byproducts.get("return-value");
    let (ok, what) = match value {
        Some(Value::Number(n)) if n.is_i64() => (n.as_i64() == Some(0), "zero"),
        _ => (false, "int"),
    };
    if ok {
        return Ok(());
    }
    Err(VerifyError::InspectionReturnValue {
        name: inspection.name.clone(),
        what,
        value: value.map_or_else(|| "None".into(), |v| v.to_string()),
        command: inspection.run.join(" "),
    })
}

fn summary_link(layout: &Layout, links: &BTreeMap<String, Link>, name: &str) -> Link {
    let mut summary = Link::new(name);
    let first = layout.steps.first().and_then(|s| links.get(&s.name));
    let last = layout.steps.last().and_then(|s| links.get(&s.name));
    if let (Some(first), Some(last)) = (first, last) {
        summary.materials = first.materials.clone();
        summary.products = last.products.clone();
        summary.byproducts = last.byproducts.clone();
        summary.command = last.command.clone();
    }
    summary
}
