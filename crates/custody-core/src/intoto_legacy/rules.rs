//! Artifact rules: parsing (python in-toto `rulelib.unpack_rule`) and applying them to a
//! step's or inspection's materials or products (`verifylib.verify_item_rules`).
//!
//! SPECS §2.4. Rules act like a firewall on a queue of artifact names: each rule consumes the
//! names it accepts, DISALLOW fails on any name still queued that it matches, REQUIRE fails if
//! its name is not queued, and whatever is left at the end is implicitly allowed.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{MetadataError, VerifyError};
use super::model::{Artifacts, Link};

/// Which side of a link a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactType {
    Materials,
    Products,
}

impl ArtifactType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Materials => "materials",
            Self::Products => "products",
        }
    }

    fn of(self, link: &Link) -> &Artifacts {
        match self {
            Self::Materials => &link.materials,
            Self::Products => &link.products,
        }
    }
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Create(String),
    Delete(String),
    Modify(String),
    Allow(String),
    Disallow(String),
    Require(String),
    /// `MATCH <pattern> [IN <src>] WITH (MATERIALS|PRODUCTS) [IN <dst>] FROM <step>`
    Match {
        pattern: String,
        source_prefix: String,
        dest_type: ArtifactType,
        dest_prefix: String,
        dest_name: String,
    },
}

/// A rule as written in the layout (kept for messages) and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRule {
    pub tokens: Vec<String>,
    pub rule: Rule,
}

impl ArtifactRule {
    /// Parses a token list; keywords are case-insensitive, patterns and names are not.
    pub fn parse(tokens: &[String]) -> Result<Self, MetadataError> {
        let bad = |reason: &str| MetadataError::Rule {
            rule: tokens.to_vec(),
            reason: reason.to_string(),
        };
        let lower: Vec<String> = tokens.iter().map(|t| t.to_lowercase()).collect();
        let kw: Vec<&str> = lower.iter().map(String::as_str).collect();
        if tokens.len() < 2 {
            return Err(bad("a rule is a keyword and a pattern"));
        }
        let pattern = tokens[1].clone();
        let generic = |rule: Rule| {
            if tokens.len() == 2 {
                Ok(rule)
            } else {
                Err(bad(
                    "CREATE/DELETE/MODIFY/ALLOW/DISALLOW/REQUIRE take exactly one pattern",
                ))
            }
        };
        let rule = match kw[0] {
            "create" => generic(Rule::Create(pattern))?,
            "delete" => generic(Rule::Delete(pattern))?,
            "modify" => generic(Rule::Modify(pattern))?,
            "allow" => generic(Rule::Allow(pattern))?,
            "disallow" => generic(Rule::Disallow(pattern))?,
            "require" => generic(Rule::Require(pattern))?,
            "match" => {
                let (src, dest_type, dst, name) = match kw.as_slice() {
                    [_, _, "in", _, "with", _, "in", _, "from", _] => (3, 5, Some(7), 9),
                    [_, _, "in", _, "with", _, "from", _] => (3, 5, None, 7),
                    [_, _, "with", _, "in", _, "from", _] => (0, 3, Some(5), 7),
                    [_, _, "with", _, "from", _] => (0, 3, None, 5),
                    _ => {
                        return Err(bad(
                            "MATCH <pattern> [IN <source-path-prefix>] WITH (MATERIALS|PRODUCTS) [IN <destination-path-prefix>] FROM <step>",
                        ));
                    }
                };
                let dest_type = match kw[dest_type] {
                    "materials" => ArtifactType::Materials,
                    "products" => ArtifactType::Products,
                    _ => return Err(bad("MATCH needs MATERIALS or PRODUCTS after WITH")),
                };
                Rule::Match {
                    pattern,
                    source_prefix: if src == 0 {
                        String::new()
                    } else {
                        tokens[src].clone()
                    },
                    dest_type,
                    dest_prefix: dst.map(|i| tokens[i].clone()).unwrap_or_default(),
                    dest_name: tokens[name].clone(),
                }
            }
            _ => {
                return Err(bad(
                    "rules start with MATCH, CREATE, DELETE, MODIFY, ALLOW, DISALLOW or REQUIRE",
                ));
            }
        };
        Ok(Self {
            tokens: tokens.to_vec(),
            rule,
        })
    }

    pub fn text(&self) -> String {
        self.tokens.join(" ")
    }
}

/// Applies `rules` to the `source_type` artifacts of the link `links[item]`.
pub fn verify_item_rules(
    item: &str,
    source_type: ArtifactType,
    rules: &[ArtifactRule],
    links: &BTreeMap<String, Link>,
) -> Result<(), VerifyError> {
    let Some(link) = links.get(item) else {
        return Ok(());
    };
    let (materials, products) = (&link.materials, &link.products);
    let artifacts = source_type.of(link);
    let mut queue: BTreeSet<String> = artifacts.keys().cloned().collect();
    for rule in rules {
        let fail = |detail: String| VerifyError::Rule {
            item: item.to_string(),
            source_type: source_type.as_str(),
            rule: rule.text(),
            detail,
        };
        let matching = |pattern: &str| -> BTreeSet<String> {
            queue
                .iter()
                .filter(|p| fnmatch(p, pattern))
                .cloned()
                .collect()
        };
        let consumed: BTreeSet<String> = match &rule.rule {
            Rule::Create(p) => matching(p)
                .into_iter()
                .filter(|a| products.contains_key(a) && !materials.contains_key(a))
                .collect(),
            Rule::Delete(p) => matching(p)
                .into_iter()
                .filter(|a| materials.contains_key(a) && !products.contains_key(a))
                .collect(),
            Rule::Modify(p) => matching(p)
                .into_iter()
                .filter(
                    |a| matches!((materials.get(a), products.get(a)), (Some(m), Some(p)) if m != p),
                )
                .collect(),
            Rule::Allow(p) => matching(p),
            Rule::Disallow(p) => {
                let hit = matching(p);
                if !hit.is_empty() {
                    return Err(fail(format!(
                        "matched the following artifacts: {:?}",
                        Vec::from_iter(hit)
                    )));
                }
                BTreeSet::new()
            }
            Rule::Require(name) => {
                if !queue.contains(name) {
                    return Err(fail(format!(
                        "did not find {name} in: {:?}",
                        Vec::from_iter(queue.iter())
                    )));
                }
                BTreeSet::new()
            }
            Rule::Match { .. } => match_rule(&rule.rule, &queue, artifacts, links),
        };
        queue.retain(|a| !consumed.contains(a));
    }
    Ok(())
}

/// verifylib `verify_match_rule`: consume queued artifacts whose hashes equal the destination
/// link's artifact at the same (re-prefixed) path. A missing destination link consumes nothing.
fn match_rule(
    rule: &Rule,
    queue: &BTreeSet<String>,
    source: &Artifacts,
    links: &BTreeMap<String, Link>,
) -> BTreeSet<String> {
    let Rule::Match {
        pattern,
        source_prefix,
        dest_type,
        dest_prefix,
        dest_name,
    } = rule
    else {
        return BTreeSet::new();
    };
    let Some(dest_link) = links.get(dest_name) else {
        return BTreeSet::new();
    };
    let dest = dest_type.of(dest_link);
    let normalized = path_join(source_prefix, "");
    let mut consumed = BTreeSet::new();
    for queued in queue {
        let relative = if source_prefix.is_empty() {
            queued.as_str()
        } else if let Some(rest) = queued.strip_prefix(&normalized) {
            rest
        } else {
            continue;
        };
        if !fnmatch(relative, pattern) {
            continue;
        }
        let full_source = if source_prefix.is_empty() {
            relative.to_string()
        } else {
            path_join(source_prefix, relative)
        };
        let full_dest = if dest_prefix.is_empty() {
            relative.to_string()
        } else {
            path_join(dest_prefix, relative)
        };
        if let (Some(s), Some(d)) = (source.get(&full_source), dest.get(&full_dest)) {
            if s == d {
                consumed.insert(full_source);
            }
        }
    }
    consumed
}

/// Python `os.path.join(a, b)` on POSIX, with `\` turned into `/` as in-toto does.
fn path_join(a: &str, b: &str) -> String {
    let joined = if b.starts_with('/') {
        b.to_string()
    } else if a.is_empty() || a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    };
    joined.replace('\\', "/")
}

/// Python `fnmatch.fnmatchcase` (POSIX): `*` matches anything including `/`, `?` one
/// character, `[seq]`/`[!seq]` a character class; an unclosed `[` is literal.
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let pat: Vec<char> = pattern.chars().collect();
    let (mut n, mut p) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() && pat[p] == '*' {
            p += 1;
            backtrack = Some((p, n));
            continue;
        }
        if p < pat.len() {
            if let Some((matched, next)) = match_one(&pat, p, name[n]) {
                if matched {
                    p = next;
                    n += 1;
                    continue;
                }
            }
        }
        match backtrack {
            Some((bp, bn)) => {
                p = bp;
                n = bn + 1;
                backtrack = Some((bp, bn + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == '*')
}

/// Matches one pattern element at `pat[p]` against `c`: (matched, index after the element).
fn match_one(pat: &[char], p: usize, c: char) -> Option<(bool, usize)> {
    match pat[p] {
        '?' => Some((true, p + 1)),
        '[' => match class_end(pat, p) {
            Some(end) => Some((class_matches(&pat[p + 1..end], c), end + 1)),
            None => Some((c == '[', p + 1)),
        },
        literal => Some((c == literal, p + 1)),
    }
}

/// Index of the `]` closing the class opened at `pat[p]`, as `fnmatch.translate` finds it.
fn class_end(pat: &[char], p: usize) -> Option<usize> {
    let mut j = p + 1;
    if pat.get(j) == Some(&'!') {
        j += 1;
    }
    if pat.get(j) == Some(&']') {
        j += 1;
    }
    while j < pat.len() && pat[j] != ']' {
        j += 1;
    }
    (j < pat.len()).then_some(j)
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negate, class) = match class.first() {
        Some('!') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut i = 0;
    let mut found = false;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            if class[i] <= c && c <= class[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if class[i] == c {
                found = true;
            }
            i += 1;
        }
    }
    found != negate
}
