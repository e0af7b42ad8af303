use super::*;
use crate::ci;
use crate::env;

fn record() -> BuildRecord {
    let environment = env::select(
        &BTreeMap::from([
            ("SOURCE_DATE_EPOCH".to_string(), "1700000000".to_string()),
            ("NPM_TOKEN".to_string(), "npm_secret".to_string()),
        ]),
        &["SOURCE_DATE_EPOCH".to_string(), "NPM_TOKEN".to_string()],
    );
    let ci = ci::detect(&BTreeMap::from([
        ("GITHUB_ACTIONS".to_string(), "true".to_string()),
        ("GITHUB_REPOSITORY".to_string(), "acme/app".to_string()),
        ("GITHUB_RUN_ID".to_string(), "9".to_string()),
    ]));
    BuildRecord {
        invocation_id: "urn:uuid:00000000-0000-4000-8000-000000000000".into(),
        started_on: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        finished_on: DateTime::from_timestamp(1_700_000_060, 0).unwrap_or_default(),
        builder_id: "https://github.com/actions/runner/github-hosted".into(),
        custody_version: "0.1.0".into(),
        command: vec!["cargo".into(), "build".into(), "--release".into()],
        working_directory: "/src/app".into(),
        artifact_patterns: vec!["target/release/app".into()],
        source: Some(Source {
            repository: Some("https://github.com/acme/app".into()),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            git_ref: Some("refs/heads/main".into()),
            dirty: true,
            path: String::new(),
        }),
        source_tree: Some(tree_digest(&mut [
            ("b".into(), Sha256Digest::of(b"b")),
            ("a".into(), Sha256Digest::of(b"a")),
        ])),
        environment,
        hermetic: true,
        lockfiles: vec![("Cargo.lock".into(), Sha256Digest::of(b"lock"))],
        toolchains: vec![Toolchain {
            name: "rustc".into(),
            version: "1.95.0".into(),
            reported: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
            path: "/usr/bin/rustc".into(),
        }],
        ci,
        pinning: crate::lint::lint_dockerfile("Dockerfile", "FROM alpine:3\n"),
    }
}

#[test]
fn provenance_shape() {
    let r = record();
    let s = r
        .statement(&[("target/release/app".into(), Sha256Digest::of(b"app"))])
        .expect("statement");
    let bytes = s.to_json_bytes();
    let text = String::from_utf8(bytes.clone()).expect("utf8");
    assert!(
        !text.contains("npm_secret"),
        "a secret value reached the provenance"
    );
    let back = Statement::from_json(&bytes).expect("parses");
    let p = Provenance::from_statement(&back).expect("valid SLSA v1");
    let ext = &p.build_definition.external_parameters;
    assert_eq!(ext["command"], json!(["cargo", "build", "--release"]));
    assert_eq!(ext["source"]["dirty"], json!(true));
    assert_eq!(
        ext["environment"],
        json!({"SOURCE_DATE_EPOCH": "1700000000"})
    );
    assert_eq!(ext["hermetic"], json!(true));
    let int = p
        .build_definition
        .internal_parameters
        .as_ref()
        .expect("internal");
    assert_eq!(int["environmentWithheld"], json!(["NPM_TOKEN"]));
    assert_eq!(int["redactions"], json!([]), "nothing secret-looking here");
    assert_eq!(int["ci"]["platform"], json!("github-actions"));
    assert_eq!(int["pinning"]["findings"], json!(1));
    let deps = &p.build_definition.resolved_dependencies;
    assert_eq!(
        deps[0].uri.as_deref(),
        Some("git+https://github.com/acme/app@refs/heads/main")
    );
    assert_eq!(
        deps[0].digest["gitCommit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(deps[1].name.as_deref(), Some("Cargo.lock"));
    assert_eq!(deps[2].uri.as_deref(), Some("pkg:generic/rustc@1.95.0"));
    let meta = p.run_details.metadata.as_ref().expect("metadata");
    assert!(meta.invocation_id.is_some() && meta.started_on < meta.finished_on);
}

#[test]
fn tree_digest_is_sha256sum_of_sorted_listing() {
    let mut entries = vec![
        ("b".to_string(), Sha256Digest::of(b"2")),
        ("a".to_string(), Sha256Digest::of(b"1")),
    ];
    let t = tree_digest(&mut entries);
    let listing = format!(
        "{}  a\n{}  b\n",
        Sha256Digest::of(b"1").hex(),
        Sha256Digest::of(b"2").hex()
    );
    assert_eq!(t.digest, Sha256Digest::of(listing.as_bytes()));
    assert_eq!(t.files, 2);
}

#[test]
fn lockfile_names() {
    for n in [
        "Cargo.lock",
        "go.sum",
        "requirements.txt",
        "requirements-dev.txt",
        "pnpm-lock.yaml",
    ] {
        assert!(is_lockfile(n), "{n}");
    }
    assert!(!is_lockfile("Cargo.toml"));
}

#[test]
fn secret_values_in_every_recorded_text_are_redacted_and_listed() {
    let token = format!("glpat-{}", "x7Yz3Qw9Er5Ty1Ui8Op2");
    let mut r = record();
    r.command = vec![
        "./release.sh".into(),
        "--password".into(),
        "hunter2".into(),
        "--release".into(),
    ];
    r.environment
        .recorded
        .insert("RUSTFLAGS".into(), format!("-Copt-level=3 -L{token}"));
    if let Some(source) = r.source.as_mut() {
        source.repository = Some("https://ci:s3cret-pw@git.example.com/acme/app".into());
    }
    r.toolchains[0].reported = format!("rustc 1.95.0 token={token}");
    let (clean, redactions) = r.redacted();
    assert_eq!(clean.command[2], "[REDACTED:secret-flag]");
    let s = r
        .statement(&[("target/release/app".into(), Sha256Digest::of(b"app"))])
        .expect("statement");
    let text = String::from_utf8(s.to_json_bytes()).expect("utf8");
    for secret in ["hunter2", token.as_str(), "s3cret-pw"] {
        assert!(!text.contains(secret), "{secret} reached the provenance");
    }
    let p = Provenance::from_statement(&s).expect("valid SLSA v1");
    let ext = &p.build_definition.external_parameters;
    assert_eq!(
        ext["source"]["repository"],
        json!("https://ci:[REDACTED:url-password]@git.example.com/acme/app")
    );
    assert_eq!(
        p.build_definition.resolved_dependencies[0].uri.as_deref(),
        Some("git+https://ci:[REDACTED:url-password]@git.example.com/acme/app@refs/heads/main")
    );
    let int = p
        .build_definition
        .internal_parameters
        .as_ref()
        .expect("internal");
    let listed: Vec<(String, String)> = int["redactions"]
        .as_array()
        .expect("redactions")
        .iter()
        .map(|r| {
            (
                r["field"].as_str().unwrap_or_default().to_owned(),
                r["rule"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        (
            "buildDefinition.externalParameters.command[2]",
            "secret-flag",
        ),
        (
            "buildDefinition.externalParameters.environment.RUSTFLAGS",
            "gitlab-token",
        ),
        (
            "buildDefinition.externalParameters.source.repository",
            "url-password",
        ),
        (
            "buildDefinition.resolvedDependencies[name=rustc].annotations.version",
            "gitlab-token",
        ),
    ]
    .iter()
    .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
    .collect();
    assert_eq!(listed, want);
    assert_eq!(
        redactions
            .iter()
            .map(|r| r.field.clone())
            .collect::<Vec<_>>(),
        want.iter().map(|w| w.0.clone()).collect::<Vec<_>>()
    );
}
