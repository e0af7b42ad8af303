//! The built-in library's Rego tests (`rego/lib_test.rego`), run as `opa test` would.

use custody_policy::{Policy, TestOutcome};

#[test]
fn builtin_library_tests_pass() {
    let results = match Policy::run_library_tests() {
        Ok(r) => r,
        Err(e) => panic!("the built-in library does not compile: {e}"),
    };
    assert!(results.len() >= 20, "only {} tests found", results.len());
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.outcome != TestOutcome::Pass)
        .map(|r| format!("{} at {}: {:?}", r.name, r.location, r.outcome))
        .collect();
    assert!(
        failed.is_empty(),
        "failing library tests:\n{}",
        failed.join("\n")
    );
}
