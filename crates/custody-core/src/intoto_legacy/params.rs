//! Layout parameter substitution: python in-toto's `substitute_parameters` (verifylib), which
//! runs `str.format(**parameters)` over every step's `expected_command`, `expected_materials`
//! and `expected_products` and every inspection's `run`, `expected_materials` and
//! `expected_products`, after the layout's signature and expiry are checked.
//!
//! Only python's plain forms are accepted: `{NAME}`, `{{` and `}}`. A replacement field with a
//! conversion, format spec, attribute or index (`{NAME!r}`, `{NAME:>8}`, `{NAME.x}`,
//! `{NAME[0]}`) or a positional one (`{}`, `{0}`) is refused rather than guessed at.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Parameter names python in-toto accepts (`_check_parameter_dict`).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why a layout's parameters could not be substituted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// The layout uses parameters the verifier was not given (operational: exit 2).
    #[error(
        "the layout uses parameter{} {} ({place}) but no value was given: pass {}",
        if names.len() == 1 { "" } else { "s" },
        names.iter().map(|n| format!("{{{n}}}")).collect::<Vec<_>>().join(", "),
        names.iter().map(|n| format!("--param {n}=VALUE")).collect::<Vec<_>>().join(" ")
    )]
    Missing {
        /// Every missing name, sorted.
        names: Vec<String>,
        /// Where the first one is used (`step 'package' expected_products`).
        place: String,
    },
    /// A string of the layout is not a format string python would substitute the same way.
    #[error("{place}: {text:?}: {reason}")]
    Template {
        place: String,
        text: String,
        reason: &'static str,
    },
}

impl ParamError {
    /// True for a missing value (the verifier's input), false for a bad layout string.
    pub fn is_operational(&self) -> bool {
        matches!(self, Self::Missing { .. })
    }
}

/// Substitutes `parameters` into a layout payload (the JSON value, before it is parsed), in the
/// fields python substitutes. Other fields, and values that are not strings, are left alone.
pub fn substitute_layout(
    payload: &Value,
    parameters: &BTreeMap<String, String>,
) -> Result<Value, ParamError> {
    let mut out = payload.clone();
    let mut missing = Missing::default();
    for (list, kind, fields) in [
        (
            "steps",
            "step",
            &[
                "expected_command",
                "expected_materials",
                "expected_products",
            ][..],
        ),
        (
            "inspect",
            "inspection",
            &["run", "expected_materials", "expected_products"][..],
        ),
    ] {
        let Some(items) = out.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for item in items {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            for field in fields {
                let place = format!("{kind} '{name}' {field}");
                if let Some(value) = item.get_mut(*field) {
                    substitute_value(value, parameters, &place, &mut missing)?;
                }
            }
        }
    }
    match missing.place {
        None => Ok(out),
        Some(place) => Err(ParamError::Missing {
            names: missing.names.into_iter().collect(),
            place,
        }),
    }
}

#[derive(Default)]
struct Missing {
    names: BTreeSet<String>,
    place: Option<String>,
}

/// Every string in `value` (a string, a list of strings, or a list of lists of strings).
fn substitute_value(
    value: &mut Value,
    parameters: &BTreeMap<String, String>,
    place: &str,
    missing: &mut Missing,
) -> Result<(), ParamError> {
    match value {
        Value::String(text) => {
            *text = format_str(text, parameters, place, missing)?;
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| substitute_value(item, parameters, place, missing)),
        _ => Ok(()),
    }
}

/// python `text.format(**parameters)` for the plain forms; names not in `parameters` are
/// collected in `missing` and left as they were.
fn format_str(
    text: &str,
    parameters: &BTreeMap<String, String>,
    place: &str,
    missing: &mut Missing,
) -> Result<String, ParamError> {
    let bad = |reason| ParamError::Template {
        place: place.to_string(),
        text: text.to_string(),
        reason,
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(bad("single '}' (write '}}' for a literal brace)")),
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') => {
                            return Err(bad(
                                "nested replacement fields are not supported; use {NAME}",
                            ));
                        }
                        Some(c) => field.push(c),
                        None => {
                            return Err(bad(
                                "'{' without a closing '}' (write '{{' for a literal brace)",
                            ));
                        }
                    }
                }
                if field.is_empty() || field.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(
                        "positional replacement fields ({} or {0}) have no value; use {NAME}",
                    ));
                }
                if field.contains(['!', ':', '.', '[']) {
                    return Err(bad(
                        "conversions, format specs, attributes and indexes are not supported; use {NAME}",
                    ));
                }
                match parameters.get(&field) {
                    Some(value) => out.push_str(value),
                    None => {
                        missing.names.insert(field);
                        missing.place.get_or_insert_with(|| place.to_string());
                    }
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}
