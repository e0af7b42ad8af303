//! Environment variables in provenance: an allowlist decides what is recorded, and names that
//! look like secrets are withheld even when allowlisted.

use std::collections::BTreeMap;

/// Fragments of variable names that mark a secret (matched case-insensitively anywhere in the
/// name). Deliberately broad: a harmless variable withheld costs nothing, a token recorded in a
/// signed, published provenance cannot be taken back.
pub const SECRET_NAME_FRAGMENTS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "COOKIE",
    "SESSION",
    "SIGNATURE",
    "CERT",
    "PAT",
    "DSN",
];

/// The variables recorded when no allowlist is configured: ones that change what a build
/// produces and never hold secrets. `*` at the end matches a prefix.
pub const DEFAULT_ALLOWLIST: &[&str] = &[
    "SOURCE_DATE_EPOCH",
    "RUSTFLAGS",
    "CARGO_BUILD_*",
    "CARGO_PROFILE_*",
    "CARGO_TARGET_DIR",
    "CC",
    "CXX",
    "CFLAGS",
    "CXXFLAGS",
    "LDFLAGS",
    "GOOS",
    "GOARCH",
    "GOFLAGS",
    "CGO_ENABLED",
    "NODE_ENV",
    "PYTHONHASHSEED",
    "TZ",
    "LANG",
    "LC_ALL",
];

/// True when `name` looks like it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_FRAGMENTS.iter().any(|fragment| {
        // "PAT" alone would catch PATH: require it as a whole `_`-separated word.
        if *fragment == "PAT" {
            return upper.split('_').any(|word| word == "PAT");
        }
        upper.contains(fragment)
    })
}

/// What the provenance records, and what it withheld (names only, never values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSelection {
    pub recorded: BTreeMap<String, String>,
    /// Allowlisted names withheld because they look like secrets.
    pub withheld: Vec<String>,
}

fn allowed(name: &str, allowlist: &[String]) -> bool {
    allowlist
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        })
}

/// Selects the allowlisted variables of `env`, withholding secret-looking names.
pub fn select(env: &BTreeMap<String, String>, allowlist: &[String]) -> EnvSelection {
    let mut selection = EnvSelection::default();
    for (name, value) in env {
        if !allowed(name, allowlist) {
            continue;
        }
        if is_secret_name(name) {
            selection.withheld.push(name.clone());
        } else {
            selection.recorded.insert(name.clone(), value.clone());
        }
    }
    selection
}

/// [`DEFAULT_ALLOWLIST`] as owned strings.
pub fn default_allowlist() -> Vec<String> {
    DEFAULT_ALLOWLIST.iter().map(|s| (*s).to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn secret_names_are_caught_in_any_case() {
        for name in [
            "GITHUB_TOKEN",
            "npm_token",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "SSH_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "BASIC_AUTH",
            "GH_PAT",
            "SENTRY_DSN",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "PATH",
            "RUSTFLAGS",
            "SOURCE_DATE_EPOCH",
            "LANG",
            "PATCH_LEVEL",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn allowlisted_secrets_are_withheld_and_named() {
        let env = env(&[
            ("RUSTFLAGS", "-Copt-level=3"),
            ("CARGO_PROFILE_RELEASE_LTO", "true"),
            ("MY_API_TOKEN", "ghp_xxx"),
            ("HOME", "/root"),
        ]);
        let allow = vec![
            "RUSTFLAGS".to_string(),
            "CARGO_PROFILE_*".to_string(),
            "MY_API_TOKEN".to_string(),
        ];
        let s = select(&env, &allow);
        assert_eq!(s.recorded.len(), 2);
        assert!(!s.recorded.contains_key("HOME"), "not allowlisted");
        assert_eq!(s.withheld, vec!["MY_API_TOKEN".to_string()]);
        assert!(!format!("{s:?}").contains("ghp_xxx"));
    }

    #[test]
    fn a_wildcard_allowlist_still_withholds_secrets() {
        let env = env(&[("A", "1"), ("NPM_AUTH_TOKEN", "x"), ("PASSWORD", "y")]);
        let s = select(&env, &["*".to_string()]);
        assert_eq!(s.recorded.keys().collect::<Vec<_>>(), vec!["A"]);
        assert_eq!(s.withheld.len(), 2);
    }
}
