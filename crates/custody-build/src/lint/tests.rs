use super::*;

fn codes(findings: &[Finding]) -> Vec<(&'static str, usize)> {
    findings.iter().map(|f| (f.rule.code(), f.line)).collect()
}

#[test]
fn dockerfile_from_rules() {
    let text = "\
# syntax=docker/dockerfile:1
FROM rust:1.85 AS build
FROM --platform=linux/amd64 debian:bookworm@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
FROM build AS test
FROM alpine
from ubuntu:latest
FROM scratch
FROM $BASE
";
    let f = lint_dockerfile("Dockerfile", text);
    assert_eq!(
        codes(&f),
        vec![
            ("docker-from-unpinned", 2),
            ("docker-from-unpinned", 5),
            ("latest-tag", 5),
            ("docker-from-unpinned", 6),
            ("latest-tag", 6),
        ]
    );
    assert!(f[0].fix.contains("@sha256:"));
    assert!(f[0].message.contains("rust:1.85"));
}

#[test]
fn workflow_uses_rules() {
    let text = "\
jobs:
  b:
    container: node:latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@1e60f620b9541d16bece96c5465dc8ee9832be0b # v4.0.3
      - uses: ./local-action
      - uses: 'github/codeql-action/init@main'
      - uses: docker://alpine:3.20
      - uses: actions/cache
";
    let f = lint_workflow(".github/workflows/ci.yml", text);
    assert_eq!(
        codes(&f),
        vec![
            ("latest-tag", 3),
            ("action-unpinned", 5),
            ("action-unpinned", 8),
            ("action-unpinned", 9),
            ("action-unpinned", 10),
        ]
    );
    assert!(
        f[1].fix
            .contains("git ls-remote https://github.com/actions/checkout"),
        "{}",
        f[1].fix
    );
    assert!(f[2].fix.contains("github/codeql-action"), "{}", f[2].fix);
}

#[test]
fn lockfile_entries_without_integrity() {
    let npm = r#"{
  "lockfileVersion": 3,
  "packages": {
    "": {"name": "x"},
    "node_modules/a": {"version": "1.0.0", "resolved": "https://r/a.tgz", "integrity": "sha512-x"},
    "node_modules/b": {"version": "1.0.0", "resolved": "https://r/b.tgz"},
    "node_modules/c": {"link": true},
    "node_modules/d": {"resolved": "git+ssh://git@github.com/d/d.git#0123"}
  }
}"#;
    assert_eq!(
        codes(&lint_lockfile("package-lock.json", npm)),
        vec![("lockfile-entry-without-integrity", 6)]
    );

    let yarn = "# yarn lockfile v1\n\na@^1:\n  version \"1.0.0\"\n  resolved \"https://r/a\"\n  integrity sha512-x\n\nb@^1:\n  version \"1.0.0\"\n  resolved \"https://r/b\"\n";
    assert_eq!(
        codes(&lint_lockfile("yarn.lock", yarn)),
        vec![("lockfile-entry-without-integrity", 8)]
    );

    let cargo = "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"00\"\n\n[[package]]\nname = \"b\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n[[package]]\nname = \"local\"\nversion = \"0.1.0\"\n";
    let f = lint_lockfile("Cargo.lock", cargo);
    assert_eq!(codes(&f), vec![("lockfile-entry-without-integrity", 9)]);
    assert!(f[0].message.contains("b 1.0.0"));

    let req = "# pinned\nrequests==2.32.0 \\\n    --hash=sha256:aa\nflask==3.0\n-r other.txt\n";
    let f = lint_lockfile("requirements-dev.txt", req);
    assert_eq!(codes(&f), vec![("lockfile-entry-without-integrity", 4)]);
    assert!(f[0].message.contains("flask==3.0"));

    assert_eq!(
        codes(&lint_lockfile("Gemfile.lock", "GEM\n  specs:\n")).len(),
        1
    );
    assert!(
        lint_lockfile("package-lock.json", "{not json").len() == 1,
        "malformed is a finding, not a panic"
    );
}

#[test]
fn manifests_need_a_lockfile_in_their_directory_or_above() {
    let files = vec![
        (
            "Cargo.toml".to_string(),
            "[workspace]\nmembers = [\"a\"]\n".to_string(),
        ),
        ("Cargo.lock".to_string(), String::new()),
        (
            "a/Cargo.toml".to_string(),
            "[package]\nname = \"a\"\n[dependencies]\nserde = \"1\"\n".to_string(),
        ),
        (
            "web/package.json".to_string(),
            "{\n  \"name\": \"w\",\n  \"dependencies\": {\"left-pad\": \"^1\"}\n}".to_string(),
        ),
        (
            "tool/package.json".to_string(),
            "{\"name\": \"t\"}".to_string(),
        ),
        (
            "svc/go.mod".to_string(),
            "module x\n\nrequire y v1\n".to_string(),
        ),
        (
            "py/pyproject.toml".to_string(),
            "[project]\nname = \"p\"\ndependencies = [\"requests\"]\n".to_string(),
        ),
    ];
    let f = lint_tree(&files);
    let got: Vec<(&str, usize)> = f.iter().map(|f| (f.file.as_str(), f.line)).collect();
    assert_eq!(
        got,
        vec![
            ("py/pyproject.toml", 3),
            ("svc/go.mod", 3),
            ("web/package.json", 3)
        ]
    );
    assert!(f.iter().all(|f| f.rule == Rule::ManifestWithoutLockfile));
}

#[test]
fn classify_paths() {
    assert_eq!(
        classify("docker/Dockerfile.prod"),
        Some(FileKind::Dockerfile)
    );
    assert_eq!(
        classify(".github/workflows/release.yaml"),
        Some(FileKind::Workflow)
    );
    assert_eq!(classify("requirements-dev.txt"), Some(FileKind::Lockfile));
    assert_eq!(classify("sub/package.json"), Some(FileKind::Manifest));
    assert_eq!(classify("src/main.rs"), None);
}

proptest::proptest! {
    #[test]
    fn rules_never_panic(text in "\\PC{0,400}", name in proptest::sample::select(vec![
        "Dockerfile", ".github/workflows/x.yml", "package-lock.json", "yarn.lock", "Cargo.lock",
        "poetry.lock", "pnpm-lock.yaml", "requirements.txt", "Gemfile.lock", "package.json",
        "Cargo.toml", "pyproject.toml", "go.mod", "Gemfile"])) {
        let _ = lint_tree(&[(name.to_string(), text)]);
    }
}
