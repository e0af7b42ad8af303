//! Secret **values** in recorded text: what the provenance records of a build (environment
//! values, the command line, the source URL, toolchain and CI text) is scanned the way secret
//! scanners (gitleaks, trufflehog, GitHub secret scanning) scan commits, and each secret-looking
//! value is replaced by a visible marker, `[REDACTED:<rule>]`. The name filter in [`crate::env`]
//! withholds whole variables whose *name* looks secret; this catches a token inside an
//! allowlisted variable (`RUSTFLAGS`) or an argument (`--password=…`).
//!
//! Two kinds of rule:
//! - **token formats**, found anywhere in a text: GitHub (`ghp_` `gho_` `ghu_` `ghs_` `ghr_`,
//!   `github_pat_`), GitLab `glpat-`, AWS access key ids (`AKIA`/`ASIA`), Slack `xox?-`, npm
//!   `npm_`, PyPI `pypi-`, Google `AIza`, OpenAI-style `sk-`, JWTs, PEM private key blocks, and
//!   the password of a URL's userinfo (`scheme://user:password@host`);
//! - **secret-named parameters**: `NAME=VALUE`, `--flag=VALUE` and `--flag VALUE` whose name has
//!   a secret word (password, passwd, passphrase, token, secret, api key, auth, credential,
//!   private key, access key, pat, cookie). Names that refer to a secret rather than hold it
//!   (`--password-file`, `TOKEN_PATH`, `--secret-env`) and values that are paths or `$VARIABLE`
//!   references are left alone.
//!
//! Only the value is replaced: the rest of the text (the flag's name, the other words of
//! `RUSTFLAGS`) stays, so the provenance still says what the build did. Hex digests and commit
//! ids match no rule.

use std::sync::LazyLock;

use regex::Regex;

/// One replaced value: where (a path in the provenance, e.g.
/// `buildDefinition.externalParameters.command[3]`) and which rule matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    pub field: String,
    pub rule: &'static str,
}

/// The marker that replaces a value matched by `rule`.
pub fn marker(rule: &str) -> String {
    format!("[REDACTED:{rule}]")
}

/// Token formats: (rule, pattern, group holding the secret). Distinctive prefixes match even
/// when glued to a flag (`-Lghp_…`); the short or common ones (`AKIA`, `sk-`) need a word
/// boundary before them.
const TOKEN_RULES: &[(&str, &str, usize)] = &[
    (
        "private-key",
        r"(?s)(-----BEGIN[ A-Z0-9_-]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[ A-Z0-9_-]*PRIVATE KEY(?: BLOCK)?-----|\z))",
        1,
    ),
    (
        "jwt",
        r"(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",
        1,
    ),
    ("github-token", r"(gh[pousr]_[A-Za-z0-9]{36,255})\b", 1),
    ("github-token", r"(github_pat_[A-Za-z0-9_]{22,255})\b", 1),
    ("gitlab-token", r"(glpat-[A-Za-z0-9_-]{20,})", 1),
    ("aws-access-key-id", r"\b((?:AKIA|ASIA)[A-Z0-9]{16})\b", 1),
    ("slack-token", r"(xox[abposr]-[A-Za-z0-9-]{10,})", 1),
    ("npm-token", r"(npm_[A-Za-z0-9]{36,})\b", 1),
    ("pypi-token", r"(pypi-[A-Za-z0-9_-]{50,})", 1),
    ("google-api-key", r"(AIza[0-9A-Za-z_-]{35})", 1),
    (
        "openai-key",
        r"\b(sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,})",
        1,
    ),
    // userinfo password: scheme://user:PASSWORD@host (the user name stays).
    (
        "url-password",
        r"\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@",
        1,
    ),
];

struct TokenRule {
    rule: &'static str,
    regex: Regex,
    group: usize,
}

static TOKENS: LazyLock<Vec<TokenRule>> = LazyLock::new(|| {
    TOKEN_RULES
        .iter()
        .filter_map(|(rule, pattern, group)| {
            // The patterns are constants covered by the unit tests; one that failed to compile
            // would be a test failure, never a silent pass, because every rule is tested.
            Regex::new(pattern).ok().map(|regex| TokenRule {
                rule,
                regex,
                group: *group,
            })
        })
        .collect()
});

/// `NAME=VALUE` or `--flag=VALUE` inside free text (a shell script, `RUSTFLAGS`).
static ASSIGNMENT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?:^|[\s;&|(`'"])(-{0,2}[A-Za-z_][A-Za-z0-9_.-]*)=('[^']*'|"[^"]*"|[^\s'";&|)`]+)"#,
    )
    .ok()
});

/// `--flag VALUE` inside free text.
static FLAG_SPACE_VALUE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"(?:^|[\s;&|(`'"])(--?[A-Za-z][A-Za-z0-9_.-]*)\s+('[^']*'|"[^"]*"|[^\s'"&;|)`-][^\s'";&|)`]*)"#)
        .ok()
});

/// Words that, ending a name's segment, say the segment holds a secret (`dbpassword`,
/// `npmtoken`, `clientsecret`).
const SECRET_WORD_SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "tokens",
    "apikey",
    "privatekey",
    "accesskey",
    "secretkey",
    "credential",
    "credentials",
];

/// Segments that hold a secret only as a whole word (`--auth`, not `--author`).
const SECRET_WORDS: &[&str] = &["auth", "authorization", "pat", "cookie", "pwd"];

/// Adjacent segments that together name a secret (`api-key`, `ACCESS_KEY`, `private_key`).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("access", "key"),
    ("private", "key"),
    ("secret", "key"),
    ("client", "secret"),
    ("session", "key"),
];

/// A last segment that makes the name a reference to a secret, not the secret.
const REFERENCE_SUFFIXES: &[&str] = &[
    "file", "path", "dir", "env", "var", "cmd", "command", "stdin", "fd", "name", "id", "url",
    "type", "length", "len", "ttl", "expiry", "header", "helper", "method", "mode",
];

/// True when `name` (a variable or a flag, with or without leading dashes) names a secret value.
pub fn is_secret_parameter(name: &str) -> bool {
    let lower = name.trim_start_matches('-').to_ascii_lowercase();
    let segments: Vec<&str> = lower
        .split(['-', '_', '.'])
        .filter(|s| !s.is_empty())
        .collect();
    let Some(last) = segments.last() else {
        return false;
    };
    if segments.len() > 1 && REFERENCE_SUFFIXES.contains(last) {
        return false;
    }
    segments
        .iter()
        .any(|s| SECRET_WORDS.contains(s) || SECRET_WORD_SUFFIXES.iter().any(|w| s.ends_with(w)))
        || segments
            .windows(2)
            .any(|w| SECRET_PAIRS.contains(&(w[0], w[1])))
}

/// A value a secret-named parameter may hold without being a secret: nothing, a path, a
/// `$VARIABLE` reference, or a marker already in place.
fn is_harmless_value(value: &str) -> bool {
    let v = value.trim_matches(|c| c == '\'' || c == '"');
    v.is_empty()
        || v.starts_with('$')
        || v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with("~/")
        || v.starts_with("[REDACTED:")
        || [".pem", ".key", ".p12", ".pfx", ".json", ".txt", ".crt"]
            .iter()
            .any(|ext| v.ends_with(ext))
}

/// Byte ranges of `text` to replace, each with its rule; sorted, not overlapping.
fn find(text: &str) -> Vec<(usize, usize, &'static str)> {
    let mut found: Vec<(usize, usize, &'static str)> = Vec::new();
    for rule in TOKENS.iter() {
        for caps in rule.regex.captures_iter(text) {
            let (Some(whole), Some(m)) = (caps.get(0), caps.get(rule.group)) else {
                continue;
            };
            // `docker://alpine:3.19@sha256:…` is an image reference, not user:password@host.
            if rule.rule == "url-password" && text[whole.end()..].starts_with("sha") {
                continue;
            }
            found.push((m.start(), m.end(), rule.rule));
        }
    }
    let pairs = [
        (ASSIGNMENT.as_ref(), "secret-assignment"),
        (FLAG_SPACE_VALUE.as_ref(), "secret-flag"),
    ];
    for (regex, rule) in pairs {
        let Some(regex) = regex else { continue };
        for caps in regex.captures_iter(text) {
            let (Some(name), Some(value)) = (caps.get(1), caps.get(2)) else {
                continue;
            };
            if !is_secret_parameter(name.as_str()) || is_harmless_value(value.as_str()) {
                continue;
            }
            let rule = if name.as_str().starts_with('-') {
                "secret-flag"
            } else {
                rule
            };
            found.push((value.start(), value.end(), rule));
        }
    }
    // Overlaps (a token inside a secret flag's value): keep the earliest start, widest span.
    found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut merged: Vec<(usize, usize, &'static str)> = Vec::new();
    for (start, end, rule) in found {
        match merged.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end, rule)),
        }
    }
    merged
}

/// `text` with each secret-looking value replaced by its marker, and the rules that matched
/// (one per replaced value, in order).
pub fn redact_text(text: &str) -> (String, Vec<&'static str>) {
    let found = find(text);
    if found.is_empty() {
        return (text.to_owned(), Vec::new());
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut rules = Vec::with_capacity(found.len());
    for (start, end, rule) in found {
        out.push_str(&text[at..start]);
        out.push_str(&marker(rule));
        rules.push(rule);
        at = end;
    }
    out.push_str(&text[at..]);
    (out, rules)
}

/// Redacts `text` in place, recording each replacement under `field`.
pub fn redact_field(text: &mut String, field: &str, redactions: &mut Vec<Redaction>) {
    let (clean, rules) = redact_text(text);
    if rules.is_empty() {
        return;
    }
    *text = clean;
    redactions.extend(rules.into_iter().map(|rule| Redaction {
        field: field.to_owned(),
        rule,
    }));
}

/// Redacts a command line: each argument as text, and an argument that follows a
/// secret-named flag without `=` (`--password hunter2`) as that flag's value. `field` is the
/// path of the list; an argument's field is `field[i]`.
pub fn redact_args(args: &mut [String], field: &str, redactions: &mut Vec<Redaction>) {
    for i in 0..args.len() {
        let follows_secret_flag = i > 0 && {
            let previous = &args[i - 1];
            previous.starts_with('-')
                && !previous.contains(['=', ' '])
                && is_secret_parameter(previous)
        };
        let this = format!("{field}[{i}]");
        if follows_secret_flag
            && !args[i].starts_with('-')
            && !is_harmless_value(&args[i])
            && !args[i].starts_with("[REDACTED:")
        {
            args[i] = marker("secret-flag");
            redactions.push(Redaction {
                field: this,
                rule: "secret-flag",
            });
            continue;
        }
        redact_field(&mut args[i], &this, redactions);
    }
}

#[cfg(test)]
mod tests;
