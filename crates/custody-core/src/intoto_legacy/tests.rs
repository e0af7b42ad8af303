//! Unit tests against python in-toto's demo (SPECS §2.2–2.4, testdata README §4).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::metadata::{sign_envelope, sign_metablock};
use super::rules::{ArtifactRule, ArtifactType, fnmatch, verify_item_rules};
use super::*;
use crate::keys::{PublicKey, SigningKey};

const ALICE_MODERN: &str = "c8ef46bd3ccb95e2617a80e447d0c8c6338f85334c2f6c6cb640e140fc183763";
/// securesystemslib < 1.0 (in-toto ≤ 2.x) ids, as securesystemslib's `encode_canonical`
/// computes them. The demo template declares bob (write-code) and carl (package) this way.
const ALICE_LEGACY: &str = "556caebdc0877eed53d419b60eddb1e57fa773e4e31d70698b588f3e9cc48b35";
const BOB_LEGACY: &str = "776a00e29f3559e0141b3b096f696abc6cfb0c657ab40f441132b345b08453f5";
const CARL_DECLARED: &str = "2f89b9272acfc8f4a0a0f094d789fdb0ba798b0fe41f2f5f417c12f0085ff498";
const FOO_PY: &str = "74dc3727c6e89308b39e4dfedf787e37841198b1fa165a27c013544a60502549";
const FOO_TGZ: &str = "52947cb78b91ad01fe81cd6aef42d1f6817e92b9e6936c1e5aabb7c98514f355";

fn demo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/in-toto-python")
        .join(rel)
}

fn public(name: &str) -> PublicKey {
    PublicKey::from_pem(&std::fs::read(demo(&format!("demo_files/{name}.pub"))).unwrap()).unwrap()
}

fn alice_signing() -> SigningKey {
    SigningKey::from_pem(&std::fs::read(demo("demo_files/alice")).unwrap(), None)
        .unwrap()
        .with_algorithm(crate::keys::KeyAlgorithm::RsaPssSha256)
        .unwrap()
}

/// The demo layout template's `signed` value, with an expiry.
fn template(expires: &str) -> Value {
    let doc: Value =
        serde_json::from_slice(&std::fs::read(demo("demo_files/demo.layout.template")).unwrap())
            .unwrap();
    let mut signed = doc["signed"].clone();
    signed["expires"] = json!(expires);
    signed
}

fn in_a_year() -> String {
    (Utc::now() + Duration::days(365))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Stands in for `python ./scripts/tar xfz foo.tar.gz` in the demo directory.
struct Untar;
impl InspectionRunner for Untar {
    fn run(&mut self, inspection: &Inspection) -> Result<Link, VerifyError> {
        let mut link = Link::new(&inspection.name);
        let set = |h: &str| DigestSet::from([("sha256".to_string(), h.to_string())]);
        link.materials.insert("foo.tar.gz".into(), set(FOO_TGZ));
        link.products = link.materials.clone();
        link.products.insert("foo.py".into(), set(FOO_PY));
        link.byproducts.insert("return-value".into(), json!(0));
        Ok(link)
    }
}

fn verify_dir(layout: &str, dir: &Path, keys: &[SslibKey]) -> Result<VerifiedChain, VerifyError> {
    let metadata = Metadata::from_json(layout.as_bytes()).unwrap();
    let options = VerifyOptions::at_now(dir);
    in_toto_verify(&metadata, keys, &options, &mut Untar)
}

fn alice_key() -> SslibKey {
    SslibKey::from_public_key(&public("alice")).unwrap()
}

#[test]
fn canonical_bytes_of_the_demo_link() {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(demo("demo_files/write-code.776a00e2.link")).unwrap(),
    )
    .unwrap();
    let got = canonical::encode(&doc["signed"]).unwrap();
    let want = format!(
        "{{\"_type\":\"link\",\"byproducts\":{{}},\"command\":[],\"environment\":{{}},\"materials\":{{}},\"name\":\"write-code\",\"products\":{{\"foo.py\":{{\"sha256\":\"{FOO_PY}\"}}}}}}"
    );
    assert_eq!(String::from_utf8(got).unwrap(), want);
}

#[test]
fn key_ids_both_ways() {
    assert_eq!(key::key_id(&public("alice")).unwrap(), ALICE_MODERN);
    assert_eq!(key::legacy_key_id(&public("alice")).unwrap(), ALICE_LEGACY);
    assert_eq!(key::legacy_key_id(&public("bob")).unwrap(), BOB_LEGACY);
    assert_eq!(key::legacy_key_id(&public("carl")).unwrap(), CARL_DECLARED);
    assert!(
        alice_key()
            .candidate_key_ids()
            .contains(&ALICE_LEGACY.to_string())
    );
}

#[test]
fn demo_verifies_classic_and_dsse_links() {
    let layout = sign_metablock(&template(&in_a_year()), &alice_signing(), ALICE_MODERN).unwrap();
    for dir in ["demo_files", "demo_dsse_files"] {
        let chain = verify_dir(&layout, &demo(dir), &[alice_key()]).unwrap();
        assert_eq!(chain.steps.len(), 2, "{dir}");
        assert_eq!(chain.inspections, ["untar"]);
        assert_eq!(chain.summary.products["foo.tar.gz"]["sha256"], FOO_TGZ);
    }
    // A DSSE-wrapped layout verifies the same way.
    let layout = sign_envelope(&template(&in_a_year()), &alice_signing(), ALICE_MODERN).unwrap();
    verify_dir(&layout, &demo("demo_files"), &[alice_key()]).unwrap();
}

#[test]
fn wrong_layout_key_expired_layout_and_no_key_fail() {
    let layout = sign_metablock(&template(&in_a_year()), &alice_signing(), ALICE_MODERN).unwrap();
    let bob = SslibKey::from_public_key(&public("bob")).unwrap();
    let err = verify_dir(&layout, &demo("demo_files"), &[bob]).unwrap_err();
    assert!(
        err.to_string().contains("No signature found for key"),
        "{err}"
    );
    let err = verify_dir(&layout, &demo("demo_files"), &[]).unwrap_err();
    assert!(matches!(err, VerifyError::NoLayoutKeys));

    let mut no_expiry = template("x");
    no_expiry.as_object_mut().unwrap().remove("expires");
    let unbounded = sign_metablock(&no_expiry, &alice_signing(), ALICE_MODERN).unwrap();
    let err = verify_dir(&unbounded, &demo("demo_files"), &[alice_key()]).unwrap_err();
    assert!(err.to_string().contains("no `expires`"), "{err}");

    let expired = sign_metablock(
        &template("2020-01-01T00:00:00Z"),
        &alice_signing(),
        ALICE_MODERN,
    )
    .unwrap();
    let err = verify_dir(&expired, &demo("demo_files"), &[alice_key()]).unwrap_err();
    assert!(err.to_string().contains("Layout expired"), "{err}");
    assert!(!err.is_operational());
}

#[test]
fn tampered_link_fails_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["write-code.776a00e2.link", "package.2f89b927.link"] {
        let text = std::fs::read_to_string(demo(&format!("demo_files/{f}"))).unwrap();
        std::fs::write(dir.path().join(f), text.replace(FOO_TGZ, &"0".repeat(64))).unwrap();
    }
    let layout = sign_metablock(&template(&in_a_year()), &alice_signing(), ALICE_MODERN).unwrap();
    let err = verify_dir(&layout, dir.path(), &[alice_key()]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("Step 'package' requires at least '1' links validly signed"),
        "{text}"
    );
    assert!(text.contains("Invalid signature"), "{text}");

    std::fs::remove_file(dir.path().join("package.2f89b927.link")).unwrap();
    let err = verify_dir(&layout, dir.path(), &[alice_key()]).unwrap_err();
    assert!(
        err.to_string()
            .contains("requires '1' link metadata file(s), found '0'"),
        "{err}"
    );
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parameters_substitute_like_python_str_format() {
    let layout = json!({
        "_type": "layout", "readme": "{NOT_SUBSTITUTED}",
        "steps": [{"name": "s", "expected_command": ["make", "{TARGET}", "{{literal}}"],
                   "expected_materials": [["MATCH", "src/{PKG}-*", "WITH", "PRODUCTS", "FROM", "a"]],
                   "expected_products": [["CREATE", "{PKG}.tar.gz"]]}],
        "inspect": [{"name": "i", "run": ["check", "{PKG}"],
                     "expected_materials": [], "expected_products": [["ALLOW", "{PKG}"]]}],
    });
    let given = params(&[("PKG", "foo"), ("TARGET", "dist")]);
    let out = params::substitute_layout(&layout, &given).unwrap();
    assert_eq!(
        out["steps"][0]["expected_command"],
        json!(["make", "dist", "{literal}"])
    );
    assert_eq!(out["steps"][0]["expected_materials"][0][1], "src/foo-*");
    assert_eq!(out["steps"][0]["expected_products"][0][1], "foo.tar.gz");
    assert_eq!(out["inspect"][0]["run"], json!(["check", "foo"]));
    assert_eq!(out["inspect"][0]["expected_products"][0][1], "foo");
    assert_eq!(out["readme"], "{NOT_SUBSTITUTED}");

    // Every missing name is listed; the place is the first use.
    let err = params::substitute_layout(&layout, &params(&[])).unwrap_err();
    assert!(err.is_operational());
    let text = err.to_string();
    assert!(
        text.contains("parameters {PKG}, {TARGET}")
            && text.contains("step 's' expected_command")
            && text.contains("--param PKG=VALUE --param TARGET=VALUE"),
        "{text}"
    );
    let err = params::substitute_layout(&layout, &params(&[("TARGET", "x")])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the layout uses parameter {PKG} (step 's' expected_materials)"),
        "{err}"
    );

    // What python would do differently, or refuse, is refused as a bad layout string.
    for bad in [
        "a}b", "{PKG", "{}", "{0}", "{PKG!r}", "{PKG:>9}", "{PKG.x}", "{a{PKG}}",
    ] {
        let layout = json!({"steps": [{"name": "s", "expected_products": [["CREATE", bad]]}]});
        let err = params::substitute_layout(&layout, &given).unwrap_err();
        assert!(!err.is_operational(), "{bad}");
        assert!(
            err.to_string().contains("step 's' expected_products"),
            "{bad}: {err}"
        );
    }
    assert!(
        params::is_valid_name("A-b_9")
            && !params::is_valid_name("a.b")
            && !params::is_valid_name("")
    );
}

#[test]
fn parameters_in_a_signed_layout() {
    let mut signed = template(&in_a_year());
    signed["steps"][1]["expected_command"] = json!(["tar", "zcvf", "{ARCHIVE}", "foo.py"]);
    signed["steps"][1]["expected_products"] = json!([
        ["REQUIRE", "{ARCHIVE}"],
        ["CREATE", "{ARCHIVE}"],
        ["ALLOW", "foo.py"]
    ]);
    signed["inspect"][0]["expected_materials"] =
        json!([["MATCH", "{ARCHIVE}", "WITH", "PRODUCTS", "FROM", "package"]]);
    let layout = sign_metablock(&signed, &alice_signing(), ALICE_MODERN).unwrap();
    let metadata = Metadata::from_json(layout.as_bytes()).unwrap();
    let verify = |given: &[(&str, &str)]| {
        let options = VerifyOptions::at_now(demo("demo_files")).with_parameters(params(given));
        in_toto_verify(&metadata, &[alice_key()], &options, &mut Untar)
    };
    let chain = verify(&[("ARCHIVE", "foo.tar.gz")]).unwrap();
    assert!(chain.warnings.is_empty(), "{:?}", chain.warnings);

    let err = verify(&[("ARCHIVE", "bar.tar.gz")]).unwrap_err();
    assert!(!err.is_operational());
    assert!(err.to_string().contains("REQUIRE bar.tar.gz"), "{err}");

    let err = verify(&[]).unwrap_err();
    assert!(err.is_operational(), "{err}");
    assert!(err.to_string().contains("{ARCHIVE}"), "{err}");

    // Expiry is judged before substitution, as python does.
    signed["expires"] = json!("2020-01-01T00:00:00Z");
    let expired = sign_metablock(&signed, &alice_signing(), ALICE_MODERN).unwrap();
    let err = verify_dir(&expired, &demo("demo_files"), &[alice_key()]).unwrap_err();
    assert!(err.to_string().contains("Layout expired"), "{err}");
}

fn link(name: &str, materials: &[(&str, &str)], products: &[(&str, &str)]) -> Link {
    let set = |list: &[(&str, &str)]| -> Artifacts {
        list.iter()
            .map(|(p, h)| {
                (
                    p.to_string(),
                    DigestSet::from([("sha256".to_string(), h.to_string())]),
                )
            })
            .collect()
    };
    let mut l = Link::new(name);
    l.materials = set(materials);
    l.products = set(products);
    l
}

fn rules(list: &[&[&str]]) -> Vec<ArtifactRule> {
    list.iter()
        .map(|r| ArtifactRule::parse(&r.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap())
        .collect()
}

#[test]
fn rule_queue_semantics() {
    let mut links = BTreeMap::new();
    links.insert(
        "build".to_string(),
        link(
            "build",
            &[("src/a.c", "1"), ("old", "2"), ("same", "3"), ("mod", "4")],
            &[
                ("src/a.c", "1"),
                ("out/a", "5"),
                ("same", "3"),
                ("mod", "6"),
            ],
        ),
    );
    links.insert(
        "fetch".to_string(),
        link("fetch", &[], &[("vendor/src/a.c", "1")]),
    );
    let check = |source, r: &[&[&str]]| verify_item_rules("build", source, &rules(r), &links);
    // CREATE, MODIFY, MATCH with prefixes, then DISALLOW everything else.
    check(
        ArtifactType::Products,
        &[
            &["CREATE", "out/*"],
            &["MODIFY", "mod"],
            &[
                "match",
                "*",
                "IN",
                "src",
                "with",
                "products",
                "in",
                "vendor/src",
                "FROM",
                "fetch",
            ],
            &["ALLOW", "same"],
            &["DISALLOW", "*"],
        ],
    )
    .unwrap();
    check(
        ArtifactType::Materials,
        &[
            &["DELETE", "old"],
            &["ALLOW", "s[a-z]me"],
            &[
                "MATCH", "src/a.c", "WITH", "PRODUCTS", "IN", "vendor", "FROM", "fetch",
            ],
            &["REQUIRE", "mod"],
            &["ALLOW", "mod"],
            &["DISALLOW", "*"],
        ],
    )
    .unwrap();
    // MODIFY does not consume an unchanged artifact; DISALLOW then fails with in-toto's words.
    let err = check(
        ArtifactType::Materials,
        &[&["MODIFY", "same"], &["DISALLOW", "same"]],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("'DISALLOW same' matched the following artifacts")
            || err.to_string().contains("DISALLOW same"),
        "{err}"
    );
    // REQUIRE needs the name still queued.
    let err = check(
        ArtifactType::Products,
        &[&["ALLOW", "*"], &["REQUIRE", "same"]],
    )
    .unwrap_err();
    assert!(err.to_string().contains("did not find same"), "{err}");
    // MATCH FROM a step with no link consumes nothing.
    assert!(
        check(
            ArtifactType::Products,
            &[
                &["MATCH", "*", "WITH", "PRODUCTS", "FROM", "nope"],
                &["DISALLOW", "*"]
            ]
        )
        .is_err()
    );
    // Hash mismatch is not consumed.
    assert!(
        check(
            ArtifactType::Materials,
            &[
                &["MATCH", "mod", "WITH", "PRODUCTS", "FROM", "build"],
                &["DISALLOW", "mod"]
            ]
        )
        .is_err()
    );
}

#[test]
fn malformed_rules_are_refused() {
    for bad in [
        &["MATCH", "a", "WITH", "THINGS", "FROM", "x"][..],
        &["CREATE"],
        &["CREATE", "a", "b"],
        &["FROB", "a"],
        &["MATCH", "a", "FROM", "x"],
    ] {
        let tokens: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
        assert!(ArtifactRule::parse(&tokens).is_err(), "{bad:?}");
    }
}

#[test]
fn fnmatch_is_pythons() {
    for (name, pattern, want) in [
        ("foo.py", "*.py", true),
        ("a/b/c.py", "*.py", true),
        ("a/b", "a?b", true),
        ("a", "[abc]", true),
        ("d", "[!abc]", true),
        ("a", "[!abc]", false),
        ("[x", "[x", true),
        ("", "*", true),
        ("ab", "a", false),
        ("abc", "a*c*", true),
        ("aXbXc", "a*b*c", true),
        ("abd", "a*c", false),
        ("]", "[]]", true),
        ("-", "[a-]", true),
    ] {
        assert_eq!(fnmatch(name, pattern), want, "{name} {pattern}");
    }
}

#[test]
fn normpath_is_pythons() {
    for (path, want) in [
        (".", "."),
        ("./a", "a"),
        ("a//b/./c/..", "a/b"),
        ("../a", "../a"),
        ("/../a", "/a"),
        ("", "."),
    ] {
        assert_eq!(record::normpath(path), want);
    }
}

#[test]
fn recording_hashes_files_and_skips_excludes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src/.git")).unwrap();
    std::fs::write(dir.path().join("src/a"), b"a").unwrap();
    std::fs::write(dir.path().join("src/.git/x"), b"x").unwrap();
    std::fs::write(dir.path().join("s.link"), b"l").unwrap();
    let got = record::record_artifacts(
        &[".".into(), "missing".into()],
        dir.path(),
        &record::DEFAULT_EXCLUDES,
    )
    .unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["src/a"]);
    let got = record::record_artifacts(&["./src/a".into()], dir.path(), &record::DEFAULT_EXCLUDES)
        .unwrap();
    assert_eq!(
        got["src/a"]["sha256"],
        crate::digest::Sha256Digest::of(b"a").hex()
    );
}

#[test]
fn links_signed_here_verify_with_each_key_type() {
    for alg in crate::keys::KeyAlgorithm::ALL {
        let key = SigningKey::generate(alg).unwrap();
        let sslib = SslibKey::from_public_key(&key.public_key()).unwrap();
        let key = key.with_algorithm(sslib.public.algorithm()).unwrap();
        let value = link("s", &[], &[("x", "1")]).to_value();
        for signed in [
            sign_metablock(&value, &key, &sslib.keyid).unwrap(),
            sign_envelope(&value, &key, &sslib.keyid).unwrap(),
        ] {
            let meta = Metadata::from_json(signed.as_bytes()).unwrap();
            // Round-trip the key object through a layout's `keys` map.
            let reread = SslibKey::from_layout(&sslib.keyid, &sslib.to_layout_json()).unwrap();
            let payload = meta
                .verify(&reread, std::slice::from_ref(&sslib.keyid))
                .unwrap();
            assert_eq!(
                Link::from_value(payload).unwrap().products["x"]["sha256"],
                "1"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Flipping, inserting or deleting bytes of a signed link never panics and never verifies.
    #[test]
    fn mutated_links_never_verify(pos in any::<prop::sample::Index>(), byte in any::<u8>(), op in 0u8..3, dsse in any::<bool>()) {
        let dir = if dsse { "demo_dsse_files" } else { "demo_files" };
        let original = std::fs::read(demo(&format!("{dir}/package.2f89b927.link"))).unwrap();
        let mut bytes = original.clone();
        let i = pos.index(bytes.len());
        match op {
            0 => bytes[i] ^= byte.max(1),
            1 => bytes.insert(i, byte),
            _ => { bytes.remove(i); }
        }
        let carl = SslibKey::from_layout(CARL_DECLARED, &template("2099-01-01T00:00:00Z")["keys"][CARL_DECLARED]).unwrap();
        let ids = [CARL_DECLARED.to_string()];
        let verified = Metadata::from_json(&bytes).ok().and_then(|m| {
            m.verify(&carl, &ids).ok().and_then(|p| Link::from_value(p).ok())
        });
        if let Some(link) = verified {
            // Only a mutation that leaves the signed content equal (whitespace, `keyid` case
            // of an unused field, ...) may verify, and then it says the same thing.
            let original_link = Link::from_value(Metadata::from_json(&original).unwrap().verify(&carl, &ids).unwrap()).unwrap();
            prop_assert_eq!(link, original_link);
        }
    }
}

#[test]
fn gpg_keys_and_signatures_are_refused_by_name() {
    // A layout whose functionary keys are GPG keys (python in-toto's demo_files_gpg).
    let doc: Value = serde_json::from_slice(
        &std::fs::read(demo("demo_files_gpg/demo.layout.template")).unwrap(),
    )
    .unwrap();
    let mut signed = doc["signed"].clone();
    signed["expires"] = json!(in_a_year());
    let layout = sign_metablock(&signed, &alice_signing(), ALICE_MODERN).unwrap();
    let err = verify_dir(&layout, &demo("demo_files_gpg"), &[alice_key()]).unwrap_err();
    assert!(err.is_operational(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("key 7b3abb26b97b655ab9296bd15b0bd02e1c768c43 is GPG (OpenPGP)")
            && text.contains("does not support GPG"),
        "{text}"
    );
    // The securesystemslib 1.x shape (`keytype`/`scheme` with a `pgp+` scheme) too.
    let key = json!({"keytype": "rsa", "scheme": "pgp+rsa-pkcsv1.5",
                     "keyval": {"public": "-----BEGIN PGP PUBLIC KEY BLOCK-----"}});
    let err = SslibKey::from_layout("abcd", &key).unwrap_err();
    assert!(matches!(err, MetadataError::Gpg { .. }), "{err}");

    // A GPG-signed link parses (it is named, not misread as malformed) and never verifies.
    let bytes = std::fs::read(demo("demo_files_gpg/package.7b3abb26.link")).unwrap();
    let link = Metadata::from_json(&bytes).unwrap();
    let err = link
        .verify(&alice_key(), &[ALICE_MODERN.into()])
        .unwrap_err();
    assert!(err.is_operational());
    assert!(
        err.to_string()
            .contains("the signature by key 7b3abb26b97b655ab9296bd15b0bd02e1c768c43 is GPG"),
        "{err}"
    );
}
