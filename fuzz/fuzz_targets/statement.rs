//! in-toto Statement v1 (and v0.1) and SLSA provenance v1: parse, write → parse round-trips,
//! provenance read from the predicate; a resource descriptor on its own.
#![no_main]
use custody_core::intoto::slsa::Provenance;
use custody_core::intoto::{ResourceDescriptor, Statement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ResourceDescriptor::from_json(data);
    let Ok(statement) = Statement::from_json(data) else {
        return;
    };
    let written = statement.to_json_bytes();
    let again = Statement::from_json(&written).unwrap_or_else(|e| {
        panic!(
            "a statement custody wrote does not parse: {e}\n{}",
            String::from_utf8_lossy(&written)
        )
    });
    assert_eq!(
        again.to_json_bytes(),
        written,
        "writing a statement is not stable"
    );
    if let Ok(provenance) = Provenance::from_statement(&statement) {
        let _ = provenance.validate();
    }
});
