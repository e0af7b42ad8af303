use super::*;

// Fake credentials in the formats the rules know; built at run time so that this file itself
// does not look like a leak to a scanner.
fn fake(prefix: &str, body: char, len: usize) -> String {
    let mut s = prefix.to_owned();
    for i in 0..len {
        s.push(if i % 7 == 3 { '7' } else { body });
    }
    s
}

#[test]
fn every_rule_compiles() {
    assert_eq!(TOKENS.len(), TOKEN_RULES.len());
    assert!(ASSIGNMENT.is_some());
    assert!(FLAG_SPACE_VALUE.is_some());
}

#[test]
fn each_token_format_is_caught_inside_text() {
    let cases: Vec<(String, &str)> = vec![
        (fake("ghp_", 'a', 36), "github-token"),
        (fake("gho_", 'B', 36), "github-token"),
        (fake("ghu_", 'c', 40), "github-token"),
        (fake("ghs_", 'D', 36), "github-token"),
        (fake("ghr_", 'e', 36), "github-token"),
        (fake("github_pat_", 'f', 82), "github-token"),
        (fake("glpat-", 'g', 20), "gitlab-token"),
        (fake("AKIA", 'Q', 16), "aws-access-key-id"),
        (fake("ASIA", 'Z', 16), "aws-access-key-id"),
        (fake("xoxb-", 'h', 30), "slack-token"),
        (fake("xoxp-", 'i', 30), "slack-token"),
        (fake("npm_", 'j', 36), "npm-token"),
        (fake("pypi-AgEIcHlwaS5vcmc", 'k', 60), "pypi-token"),
        (fake("AIza", 'l', 35), "google-api-key"),
        (fake("sk-proj-", 'm', 40), "openai-key"),
        (fake("sk-", 'n', 48), "openai-key"),
        (
            format!(
                "{}.{}.{}",
                fake("eyJ", 'o', 20),
                fake("eyJ", 'p', 30),
                fake("", 'q', 43)
            ),
            "jwt",
        ),
        (
            format!(
                "-----BEGIN {}PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END {}PRIVATE KEY-----",
                "EC ", "EC "
            ),
            "private-key",
        ),
        (
            format!(
                "-----BEGIN OPENSSH {}-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH {}-----",
                "PRIVATE KEY", "PRIVATE KEY"
            ),
            "private-key",
        ),
    ];
    for (secret, rule) in &cases {
        for text in [
            secret.clone(),
            format!("-C link-arg=-L/opt {secret} --cfg x"),
            format!("curl -H 'Authorization: Bearer {secret}' https://x"),
        ] {
            let (clean, rules) = redact_text(&text);
            assert!(!clean.contains(secret.as_str()), "{rule}: {clean}");
            assert_eq!(rules, vec![*rule], "{text}");
            assert!(clean.contains(&marker(rule)), "{clean}");
        }
    }
}

#[test]
fn only_the_password_of_a_url_is_redacted() {
    let (clean, rules) =
        redact_text("git clone https://ci-bot:s3cr3t-pa55@git.example.com/app.git");
    assert_eq!(
        clean,
        "git clone https://ci-bot:[REDACTED:url-password]@git.example.com/app.git"
    );
    assert_eq!(rules, vec!["url-password"]);
    let token = fake("ghs_", 'x', 36);
    let (clean, _) = redact_text(&format!("https://x-access-token:{token}@github.com/o/r"));
    assert!(!clean.contains(&token), "{clean}");
    assert!(
        clean.starts_with("https://x-access-token:[REDACTED:"),
        "{clean}"
    );
}

#[test]
fn secret_named_parameters_lose_their_values() {
    let cases = [
        ("--password=hunter2", "--password=[REDACTED:secret-flag]"),
        (
            "--db-password=hunter2",
            "--db-password=[REDACTED:secret-flag]",
        ),
        ("--api-key=abc123", "--api-key=[REDACTED:secret-flag]"),
        ("--apikey=abc123", "--apikey=[REDACTED:secret-flag]"),
        ("--auth=user:pw", "--auth=[REDACTED:secret-flag]"),
        ("--access-key=abc", "--access-key=[REDACTED:secret-flag]"),
        ("--private-key=abc", "--private-key=[REDACTED:secret-flag]"),
        (
            "--client-secret=xyz",
            "--client-secret=[REDACTED:secret-flag]",
        ),
        ("-passphrase=xyz", "-passphrase=[REDACTED:secret-flag]"),
        ("NPM_TOKEN=abc", "NPM_TOKEN=[REDACTED:secret-assignment]"),
        ("DB_PASSWD=abc", "DB_PASSWD=[REDACTED:secret-assignment]"),
        (
            "AWS_SECRET_ACCESS_KEY=abc",
            "AWS_SECRET_ACCESS_KEY=[REDACTED:secret-assignment]",
        ),
        (
            "make deploy REGISTRY_CREDENTIALS='a b' V=1",
            "make deploy REGISTRY_CREDENTIALS=[REDACTED:secret-assignment] V=1",
        ),
        (
            "tool --token abc123 --release",
            "tool --token [REDACTED:secret-flag] --release",
        ),
        (
            "./deploy.sh --password \"two words\"",
            "./deploy.sh --password [REDACTED:secret-flag]",
        ),
    ];
    for (text, want) in cases {
        let (clean, rules) = redact_text(text);
        assert_eq!(clean, want, "{text}");
        assert_eq!(rules.len(), 1, "{text}");
    }
}

#[test]
fn near_misses_are_left_alone() {
    for text in [
        "--release",
        "cargo build --release --locked --target x86_64-unknown-linux-gnu",
        "-Copt-level=3 -Ctarget-cpu=native --cfg feature=\"auth\"",
        "git log --author=alice",
        "--password-file=/run/secrets/db",
        "--password-file /run/secrets/db",
        "--token-path=./token.txt",
        "TOKEN_FILE=secret.txt",
        "--password=$DB_PASSWORD",
        "--private-key ./signing.pem",
        "--key k.key",
        "PATH=/usr/bin:/bin",
        "--features auth,tls",
        "--tokenizer-model=bert",
        // digests and commit ids
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "e83c5163316f89bfbde7d9ab23ca2e25604af290",
        "git checkout e83c5163316f89bfbde7d9ab23ca2e25604af290",
        "docker://alpine:3.19@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "https://github.com/org/repo.git",
        "http://localhost:8080/path@v2",
        "git@github.com:org/repo.git",
        // too short, or the prefix without a token
        "ghp_short",
        "sk-learn",
        "task-sk-0123",
        "AKIA",
        "npm_config_cache=/tmp/npm",
        "eyJhbGciOi",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYH\n-----END PUBLIC KEY-----",
        "rustc 1.95.0 (59807616e 2026-04-14)",
    ] {
        let (clean, rules) = redact_text(text);
        assert_eq!(clean, text, "{rules:?}");
        assert!(rules.is_empty(), "{text}: {rules:?}");
    }
}

#[test]
fn secret_parameter_names() {
    for name in [
        "--password",
        "PASSWORD",
        "--db-password",
        "dbpassword",
        "--token",
        "GITHUB_TOKEN",
        "--auth",
        "--api-key",
        "API_KEY",
        "--apikey",
        "--client-secret",
        "--private-key",
        "AWS_ACCESS_KEY",
        "--credentials",
        "--pat",
        "--cookie",
    ] {
        assert!(is_secret_parameter(name), "{name}");
    }
    for name in [
        "--author",
        "--release",
        "--key",
        "--signing-key",
        "--path",
        "--password-file",
        "TOKEN_PATH",
        "--secret-env",
        "--tokenizer",
        "--features",
        "-C",
        "",
        "--",
    ] {
        assert!(!is_secret_parameter(name), "{name}");
    }
}

#[test]
fn a_command_line_is_redacted_per_argument_with_its_index() {
    let token = fake("ghp_", 'z', 36);
    let mut args: Vec<String> = [
        "./deploy",
        "--password",
        "hunter2",
        "--password=hunter3",
        "--release",
        "--key",
        "k.key",
        &format!("--header=Authorization: token {token}"),
        "--token",
        "--verbose",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let mut redactions = Vec::new();
    redact_args(&mut args, "command", &mut redactions);
    let joined = args.join(" ");
    for secret in ["hunter2", "hunter3", token.as_str()] {
        assert!(!joined.contains(secret), "{joined}");
    }
    assert_eq!(args[2], "[REDACTED:secret-flag]");
    assert_eq!(args[3], "--password=[REDACTED:secret-flag]");
    assert_eq!(args[6], "k.key");
    assert_eq!(
        args[9], "--verbose",
        "a flag after a valueless --token stays"
    );
    let fields: Vec<(&str, &str)> = redactions
        .iter()
        .map(|r| (r.field.as_str(), r.rule))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("command[2]", "secret-flag"),
            ("command[3]", "secret-flag"),
            ("command[7]", "github-token"),
        ]
    );
}

#[test]
fn redacting_twice_changes_nothing_more() {
    let text = format!("--password=a TOKEN=b {}", fake("glpat-", 'w', 24));
    let (once, rules) = redact_text(&text);
    assert_eq!(rules.len(), 3);
    let (twice, again) = redact_text(&once);
    assert_eq!(twice, once);
    assert!(again.is_empty(), "{again:?}");
}
