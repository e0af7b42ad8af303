//! RFC 8785 examples and Rekor bodies from the test data.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::encoding::base64_decode_any;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
}

#[test]
fn rfc8785_section_3_2_2_sample() {
    // RFC 8785 §3.2.2 (input) and §3.2.4 (output).
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    let expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
    assert_eq!(canonicalize_json(input.as_bytes()).unwrap(), expected);
}

#[test]
fn rfc8785_section_3_2_3_sorting() {
    let input = r#"{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let value: Value = serde_json::from_str(input).unwrap();
    let out = canonicalize(&value).unwrap();
    let order = [
        "\\r",
        "1",
        "\u{80}",
        "\u{f6}",
        "\u{20ac}",
        "\u{1f600}",
        "\u{fb33}",
    ];
    let mut last = 0;
    for name in order {
        let at = out
            .find(&format!("\"{name}\":"))
            .unwrap_or_else(|| panic!("{name:?} in {out}"));
        assert!(at >= last, "{name:?} out of order in {out}");
        last = at;
    }
    // U+1F600 sorts before U+FB33 only by UTF-16 code units (0xD83D < 0xFB33).
    assert!(out.find('\u{1f600}').unwrap() < out.find('\u{fb33}').unwrap());
}

#[test]
fn rfc8785_appendix_b_numbers() {
    let cases: [(u64, &str); 24] = [
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for (bits, expected) in cases {
        assert_eq!(
            format_double(f64::from_bits(bits)).unwrap(),
            expected,
            "{bits:016x}"
        );
    }
    for bits in [0x7fffffffffffffff_u64, 0x7ff0000000000000] {
        assert!(format_double(f64::from_bits(bits)).is_err());
    }
}

#[test]
fn integers_and_strings() {
    let v = json!({"b": [1, -1, 9007199254740993_u64, -9007199254740993_i64, u64::MAX, 1.5], "a": "\u{7f}\u{1f}\u{2028}<>&"});
    assert_eq!(
        canonicalize(&v).unwrap(),
        "{\"a\":\"\u{7f}\\u001f\u{2028}<>&\",\"b\":[1,-1,9007199254740992,-9007199254740992,18446744073709552000,1.5]}"
    );
}

#[test]
fn non_canonical_input_is_detected() {
    assert!(is_canonical(br#"{"a":1,"b":[true,null]}"#));
    for text in [
        &br#"{"b":1,"a":2}"#[..],
        br#"{"a": 1}"#,
        br#"{"a":1,"a":1}"#,
        br#"{"a":1.0}"#,
        br#"{"a":"\u0041"}"#,
        br#"{"a":"\/"}"#,
        b"not json",
    ] {
        assert!(!is_canonical(text), "{}", String::from_utf8_lossy(text));
    }
}

/// Every Rekor body in the conformance bundles is JCS: it re-canonicalizes to itself.
#[test]
fn rekor_bodies_are_fixed_points() {
    let dir = testdata().join("sigstore-conformance/bundle-verify");
    let mut checked = 0;
    for case in std::fs::read_dir(&dir).unwrap() {
        let path = case.unwrap().path().join("bundle.sigstore.json");
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        let Ok(bundle) = serde_json::from_slice::<Value>(&text) else {
            continue;
        };
        let entries = bundle["verificationMaterial"]["tlogEntries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for entry in entries {
            let body = base64_decode_any(entry["canonicalizedBody"].as_str().unwrap()).unwrap();
            assert!(
                is_canonical(&body),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&body)
            );
            checked += 1;
        }
    }
    assert!(checked >= 50, "{checked} bodies");
    let derived: Value = serde_json::from_slice(
        &std::fs::read(testdata().join("sigstore-derived/happy-path-v0.3.rekor-v1.derived.json"))
            .unwrap(),
    )
    .unwrap();
    for field in ["canonicalized_body_utf8", "set_signed_payload_utf8"] {
        assert!(
            is_canonical(derived[field].as_str().unwrap().as_bytes()),
            "{field}"
        );
    }
}
