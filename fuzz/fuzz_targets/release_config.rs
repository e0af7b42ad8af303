//! The release server's config (TOML): environments, principals, roles, durations.
#![no_main]
use custody_release::config::{ReleaseConfig, parse_duration};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_duration(text);
    let env = |name: &str| (name == "CUSTODY_FUZZ_TOKEN").then(|| "s3cret-token-value".to_owned());
    if let Ok(config) = ReleaseConfig::parse(text, Path::new("/nonexistent"), &env) {
        for e in &config.environments {
            assert!(config.environment(&e.name).is_some());
        }
        let _ = config.groups();
    }
});
