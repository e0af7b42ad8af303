//! Environments and principals, from the server's release config (TOML):
//!
//! ```toml
//! [[environment]]
//! name = "dev"
//! policy = "policy"                # a policy directory (relative to this file)
//! stage = "development"
//!
//! [[environment]]
//! name = "prod"
//! from = "staging"                 # must have passed this environment first
//! policy = "policy"
//! stage = "production"
//! target = "dir:/srv/app"          # informational: where its deploy agent activates releases
//! approvals = { required = 2, group = "release-approvers", max_age = "7d" }
//! namespaces = ["shop-prod", "payments-prod"]   # Kubernetes namespaces admitted as prod
//! admit_previous = 1               # releases before the current one admission still admits
//!
//! [[principal]]
//! name = "alice"
//! token_sha256 = "…"               # SHA-256 (hex) of the API token; or `token_env = "VAR"`
//! roles = ["approver"]
//! groups = ["release-approvers"]
//! keys = ["keys/alice.pub"]        # public keys this person signs with
//!
//! [[principal]]
//! name = "prod-agent"
//! token_env = "PROD_AGENT_TOKEN"
//! roles = ["deployer"]             # a deploy agent: reports deployments, nothing else
//! environments = ["prod"]          # the only environments it may report for (required)
//! ```
//!
//! Parsing checks what can be checked without the policy engine: names are unique and
//! well-formed, every `from` names an earlier environment (so promotion order is a chain
//! without cycles), every approval group has at least `required` members, tokens are unique,
//! and no Kubernetes namespace is mapped to two environments.
//!
//! The namespace mapping lives here, not in a namespace or Pod label: custody has no
//! Kubernetes API access (an AdmissionReview carries the namespace's name, not its labels), and
//! a label on the Pod is written by whoever deploys it, who would then choose the environment
//! whose rules apply to them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use custody_core::digest::Sha256Digest;
use custody_core::keys::PublicKey;
use serde::{Deserialize, Serialize};

use crate::model::Role;

/// A config problem: names the file, the table and what to change.
#[derive(Debug, thiserror::Error)]
#[error("release config {path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    environment: Vec<RawEnvironment>,
    #[serde(default)]
    principal: Vec<RawPrincipal>,
    /// How long a current-release statement is valid (e.g. "5m").
    current_release_lifetime: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    name: String,
    policy: PathBuf,
    from: Option<String>,
    stage: Option<String>,
    target: Option<String>,
    approvals: Option<RawApprovals>,
    /// Kubernetes namespaces whose admission follows this environment's releases.
    #[serde(default)]
    namespaces: Vec<toml::Spanned<String>>,
    /// How many releases before the current one admission still admits.
    admit_previous: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovals {
    required: u32,
    group: String,
    max_age: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrincipal {
    name: String,
    token_sha256: Option<String>,
    token_env: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    keys: Vec<PathBuf>,
    #[serde(default)]
    identities: Vec<String>,
    /// `deployer` principals: the environments they report for.
    #[serde(default)]
    environments: Vec<String>,
}

/// An environment's approval rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRule {
    /// Distinct approvers needed.
    pub required: u32,
    /// The group they must belong to.
    pub group: String,
    /// Approvals older than this do not count.
    #[serde(serialize_with = "ser_secs")]
    pub max_age: Option<Duration>,
}

fn ser_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}

/// One environment.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    /// The policy directory (resolved against the config file's directory).
    pub policy: PathBuf,
    /// The environment an artifact must have passed first.
    pub from: Option<String>,
    pub stage: Option<String>,
    pub target: Option<String>,
    pub approvals: Option<ApprovalRule>,
    /// Kubernetes namespaces (exact names) whose admission follows this environment's
    /// releases (`namespaces`; none by default).
    pub namespaces: Vec<String>,
    /// How many releases before the current one admission still admits (`admit_previous`,
    /// default [`DEFAULT_ADMIT_PREVIOUS`]: the previous release, for a rolling update).
    pub admit_previous: u64,
}

/// Releases before the current one that admission admits unless an environment says:
/// one, so pods of release N−1 still start while a rolling update to N is under way.
pub const DEFAULT_ADMIT_PREVIOUS: u64 = custody_policy::release::DEFAULT_ALLOW_PREVIOUS;

/// A person or machine with an API token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    /// SHA-256 of the API token.
    pub token_sha256: [u8; 32],
    pub roles: BTreeSet<Role>,
    pub groups: BTreeSet<String>,
    /// Key ids (hex) of the keys this principal signs with.
    pub key_ids: BTreeSet<String>,
    /// Those keys.
    pub keys: Vec<PublicKey>,
    /// Certificate identities (SANs) this principal signs as.
    pub identities: BTreeSet<String>,
    /// The environments a `deployer` reports for (empty for other principals).
    pub environments: BTreeSet<String>,
}

impl Principal {
    /// Whether this principal may act in `role` (admins may act in any).
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role) || self.roles.contains(&Role::Admin)
    }
}

/// The parsed release config.
#[derive(Debug, Clone, Default)]
pub struct ReleaseConfig {
    /// In promotion order as written.
    pub environments: Vec<Environment>,
    pub principals: Vec<Principal>,
    /// How long the current-release statements the server signs for deploy agents are valid
    /// (`current_release_lifetime`; the server's default when absent).
    pub current_release_lifetime: Option<Duration>,
}

impl ReleaseConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, &|name| std::env::var(name).ok()).map_err(err)
    }

    /// Parses config text; relative paths resolve against `base`; `env` reads `token_env`.
    pub fn parse(
        text: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| match e.span() {
            // The line to fix (1-based), as an editor shows it.
            Some(span) => format!(
                "line {}: {}",
                text.get(..span.start).unwrap_or(text).matches('\n').count() + 1,
                e.message()
            ),
            None => e.message().to_string(),
        })?;
        let mut environments: Vec<Environment> = Vec::new();
        // Namespace → (environment, line) as declared so far.
        let mut mapped: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for e in raw.environment {
            check_name("environment", &e.name)?;
            if environments.iter().any(|x| x.name == e.name) {
                return Err(format!("environment {:?} is declared twice", e.name));
            }
            if let Some(from) = &e.from
                && !environments.iter().any(|x| &x.name == from)
            {
                return Err(format!(
                    "environment {:?}: from = {from:?} must name an environment declared before it",
                    e.name
                ));
            }
            let approvals = match e.approvals {
                Some(a) => {
                    if a.required == 0 {
                        return Err(format!(
                            "environment {:?}: approvals.required must be at least 1 (remove `approvals` for none)",
                            e.name
                        ));
                    }
                    let max_age = a
                        .max_age
                        .as_deref()
                        .map(parse_duration)
                        .transpose()
                        .map_err(|m| format!("environment {:?}: approvals.max_age: {m}", e.name))?;
                    Some(ApprovalRule {
                        required: a.required,
                        group: a.group,
                        max_age,
                    })
                }
                None => None,
            };
            let mut namespaces = Vec::new();
            for ns in &e.namespaces {
                let line = text[..ns.span().start.min(text.len())]
                    .lines()
                    .count()
                    .max(1);
                let name = ns.get_ref().clone();
                check_namespace(&e.name, &name, line)?;
                if let Some((other, first)) = mapped.get(&name) {
                    return Err(format!(
                        "line {line}: namespace {name:?} is mapped to environment {:?} and (line {first}) to environment {other:?}: a namespace's admission follows one environment; remove it from one of them",
                        e.name
                    ));
                }
                mapped.insert(name.clone(), (e.name.clone(), line));
                namespaces.push(name);
            }
            environments.push(Environment {
                name: e.name,
                policy: base.join(e.policy),
                from: e.from,
                stage: e.stage,
                target: e.target,
                approvals,
                namespaces,
                admit_previous: e.admit_previous.unwrap_or(DEFAULT_ADMIT_PREVIOUS),
            });
        }
        let mut principals: Vec<Principal> = Vec::new();
        for p in raw.principal {
            check_name("principal", &p.name)?;
            if p.name == "custody" {
                return Err("principal name \"custody\" is reserved for the server itself".into());
            }
            if principals.iter().any(|x| x.name == p.name) {
                return Err(format!("principal {:?} is declared twice", p.name));
            }
            let token_sha256 = match (&p.token_sha256, &p.token_env) {
                (Some(hex_text), None) => {
                    let d: Sha256Digest = format!("sha256:{}", hex_text.trim())
                        .parse()
                        .map_err(|_| {
                            format!(
                                "principal {:?}: token_sha256 must be 64 hex digits (`printf %s TOKEN | sha256sum`)",
                                p.name
                            )
                        })?;
                    *d.as_bytes()
                }
                (None, Some(var)) => {
                    let token = env(var).filter(|t| !t.trim().is_empty()).ok_or_else(|| {
                        format!(
                            "principal {:?}: token_env = {var:?} but that variable is not set",
                            p.name
                        )
                    })?;
                    *Sha256Digest::of(token.trim().as_bytes()).as_bytes()
                }
                _ => {
                    return Err(format!(
                        "principal {:?}: give exactly one of token_sha256 and token_env",
                        p.name
                    ));
                }
            };
            if principals.iter().any(|x| x.token_sha256 == token_sha256) {
                return Err(format!(
                    "principal {:?} has the same token as another principal",
                    p.name
                ));
            }
            let roles = p
                .roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<BTreeSet<_>, _>>()
                .map_err(|m| format!("principal {:?}: {m}", p.name))?;
            if roles.contains(&Role::Deployer) && p.environments.is_empty() {
                return Err(format!(
                    "principal {:?} has the deployer role but no environments: list the environments its deploy agent reports for (environments = [\"prod\"])",
                    p.name
                ));
            }
            if !roles.contains(&Role::Deployer) && !p.environments.is_empty() {
                return Err(format!(
                    "principal {:?} lists environments but has no deployer role: environments only limit what a deploy agent reports (add roles = [\"deployer\"] or remove environments)",
                    p.name
                ));
            }
            for name in &p.environments {
                if !environments.iter().any(|e| &e.name == name) {
                    return Err(format!(
                        "principal {:?}: environment {name:?} is not declared ([[environment]] name = {name:?})",
                        p.name
                    ));
                }
            }
            let mut key_ids = BTreeSet::new();
            let mut keys = Vec::new();
            for key in &p.keys {
                let path = base.join(key);
                let bytes = std::fs::read(&path)
                    .map_err(|e| format!("principal {:?}: key {}: {e}", p.name, path.display()))?;
                let public = PublicKey::from_pem(&bytes)
                    .map_err(|e| format!("principal {:?}: key {}: {e}", p.name, path.display()))?;
                key_ids.insert(public.key_id().to_string());
                keys.push(public);
            }
            principals.push(Principal {
                name: p.name,
                token_sha256,
                roles,
                groups: p.groups.into_iter().collect(),
                key_ids,
                keys,
                identities: p.identities.into_iter().collect(),
                environments: p.environments.into_iter().collect(),
            });
        }
        for e in &environments {
            if let Some(rule) = &e.approvals {
                let members = principals
                    .iter()
                    .filter(|p| p.groups.contains(&rule.group))
                    .count();
                if members < rule.required as usize {
                    return Err(format!(
                        "environment {:?} needs {} approvals from group {:?}, which has {members} member(s)",
                        e.name, rule.required, rule.group
                    ));
                }
            }
        }
        let current_release_lifetime = raw
            .current_release_lifetime
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|m| format!("current_release_lifetime: {m}"))?;
        if current_release_lifetime.is_some_and(|d| d.is_zero() || d.as_secs() > 86_400) {
            return Err(
                "current_release_lifetime must be between 1s and 1d (a few minutes: agents poll more often than that)"
                    .into(),
            );
        }
        Ok(Self {
            environments,
            principals,
            current_release_lifetime,
        })
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The environment whose releases admission in Kubernetes namespace `namespace` follows
    /// (its `namespaces` list it); `None` for an unmapped namespace.
    pub fn environment_for_namespace(&self, namespace: &str) -> Option<&Environment> {
        self.environments
            .iter()
            .find(|e| e.namespaces.iter().any(|n| n == namespace))
    }

    /// The principal a key id belongs to.
    pub fn principal_by_key(&self, key_id: &str) -> Option<&Principal> {
        self.principals.iter().find(|p| p.key_ids.contains(key_id))
    }

    /// The principal a certificate identity belongs to.
    pub fn principal_by_identity(&self, identity: &str) -> Option<&Principal> {
        self.principals
            .iter()
            .find(|p| p.identities.contains(identity))
    }

    /// Group name → member principal names.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &self.principals {
            for g in &p.groups {
                out.entry(g.clone()).or_default().push(p.name.clone());
            }
        }
        out
    }
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name {name:?} must be 1-64 characters of letters, digits, '-', '_' or '.'"
        ))
    }
}

/// A Kubernetes namespace name (RFC 1123 label: 1-63 lowercase letters, digits and '-',
/// starting and ending with a letter or digit).
fn check_namespace(env: &str, name: &str, line: usize) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(format!(
            "line {line}: environment {env:?}: namespace {name:?} is not a Kubernetes namespace name (1-63 lowercase letters, digits and '-'; exact names, no patterns)"
        ))
    }
}

/// `30s`, `15m`, `12h`, `7d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 30s, 15m, 12h, 7d)"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: unit must be s, m, h or d")),
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ReleaseConfig, String> {
        ReleaseConfig::parse(text, Path::new("/base"), &|v| {
            (v == "TOK").then(|| "secret".to_owned())
        })
    }

    #[test]
    fn a_toml_error_names_its_line() {
        let e = parse("[[environment]]\nname = \"dev\"\npolicy = \"p\"\ncolour = \"red\"\n")
            .unwrap_err();
        assert!(e.starts_with("line 4: unknown field `colour`"), "{e}");
        let e = parse("\n\n[[environment]]\nname = \"dev\n").unwrap_err();
        assert!(e.starts_with("line 4: "), "{e}");
    }

    #[test]
    fn chain_and_approvals_are_checked() {
        let ok = r#"
[[environment]]
name = "dev"
policy = "p"
[[environment]]
name = "prod"
from = "dev"
policy = "p"
approvals = { required = 1, group = "ops", max_age = "7d" }
[[principal]]
name = "alice"
token_env = "TOK"
roles = ["approver", "release-manager"]
groups = ["ops"]
"#;
        let c = parse(ok).unwrap();
        assert_eq!(c.environments.len(), 2);
        assert_eq!(c.environments[0].policy, Path::new("/base/p"));
        let rule = c.environment("prod").unwrap().approvals.clone().unwrap();
        assert_eq!(rule.max_age, Some(Duration::from_secs(7 * 86_400)));
        let alice = &c.principals[0];
        assert!(alice.has(Role::Approver) && !alice.has(Role::Admin) && !alice.has(Role::Builder));
        assert_eq!(alice.token_sha256, *Sha256Digest::of(b"secret").as_bytes());

        let bad_from = ok.replace("from = \"dev\"", "from = \"staging\"");
        assert!(parse(&bad_from).unwrap_err().contains("from = \"staging\""));
        let too_few = ok.replace("required = 1", "required = 2");
        assert!(parse(&too_few).unwrap_err().contains("has 1 member"));
        let bad_role = ok.replace("\"approver\",", "\"approvr\",");
        assert!(parse(&bad_role).unwrap_err().contains("unknown role"));
        let no_env = ok.replace("TOK", "NOPE");
        assert!(parse(&no_env).unwrap_err().contains("not set"));
        let reserved = ok.replace("name = \"alice\"", "name = \"custody\"");
        assert!(parse(&reserved).unwrap_err().contains("reserved"));
    }

    #[test]
    fn a_deployer_names_the_environments_it_reports_for() {
        let ok = r#"
[[environment]]
name = "dev"
policy = "p"
[[environment]]
name = "prod"
from = "dev"
policy = "p"
[[principal]]
name = "prod-agent"
token_env = "TOK"
roles = ["deployer"]
environments = ["prod"]
"#;
        let c = parse(ok).unwrap();
        let agent = &c.principals[0];
        assert!(agent.has(Role::Deployer) && !agent.has(Role::ReleaseManager));
        assert_eq!(agent.environments, BTreeSet::from(["prod".to_owned()]));

        let none = ok.replace("environments = [\"prod\"]", "");
        let err = parse(&none).unwrap_err();
        assert!(
            err.contains("\"prod-agent\"") && err.contains("no environments"),
            "{err}"
        );
        let unknown = ok.replace("[\"prod\"]", "[\"qa\"]");
        assert!(
            parse(&unknown)
                .unwrap_err()
                .contains("\"qa\" is not declared")
        );
        let not_deployer = ok.replace("[\"deployer\"]", "[\"auditor\"]");
        assert!(
            parse(&not_deployer)
                .unwrap_err()
                .contains("no deployer role")
        );
    }

    #[test]
    fn namespaces_map_to_one_environment() {
        let ok = r#"
[[environment]]
name = "staging"
policy = "p"
namespaces = ["shop-staging"]
admit_previous = 0
[[environment]]
name = "prod"
from = "staging"
policy = "p"
namespaces = ["shop-prod", "payments-prod"]
"#;
        let c = parse(ok).unwrap();
        assert_eq!(
            c.environment_for_namespace("payments-prod").unwrap().name,
            "prod"
        );
        assert_eq!(
            c.environment_for_namespace("shop-staging").unwrap().name,
            "staging"
        );
        assert!(c.environment_for_namespace("default").is_none());
        assert_eq!(c.environment("staging").unwrap().admit_previous, 0);
        assert_eq!(
            c.environment("prod").unwrap().admit_previous,
            DEFAULT_ADMIT_PREVIOUS
        );

        let twice = ok.replace("\"payments-prod\"", "\"shop-staging\"");
        let err = parse(&twice).unwrap_err();
        assert!(
            err.contains("line 11")
                && err.contains("(line 5)")
                && err.contains("\"staging\"")
                && err.contains("\"prod\"")
                && err.contains("\"shop-staging\""),
            "{err}"
        );
        let pattern = ok.replace("\"shop-prod\"", "\"*-prod\"");
        let err = parse(&pattern).unwrap_err();
        assert!(
            err.contains("line 11") && err.contains("not a Kubernetes namespace"),
            "{err}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("").is_err());
    }
}
