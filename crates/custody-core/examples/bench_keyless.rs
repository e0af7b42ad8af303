//! In-process keyless verification timing (medians), for docs/PERFORMANCE.md:
//! `cargo run --release -p custody-core --example bench_keyless [-- RUNS]`.
//!
//! Per run: parse the bundle JSON and verify it keylessly (timestamps, log entry, certificate
//! chain at each verified time, SCT, identity, signature) for the conformance artifact, with the
//! trusted root parsed once beforehand (as `custody verify --bundles-from` does).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use custody_core::bundle::Bundle;
use custody_core::trust_root::TrustedRoot;
use custody_core::verify::{Artifact, KeylessPolicy, verify_keyless};
use custody_core::x509::IdentityMatcher;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted
        .get(sorted.len().saturating_sub(1) * p / 100)
        .copied()
        .unwrap_or_default()
}

fn bench(name: &str, root_path: &Path, runs: usize) -> Result<(), String> {
    let dir = testdata().join("sigstore-conformance/bundle-verify");
    let bundle_json = read(&dir.join(name).join("bundle.sigstore.json"))?;
    let artifact = read(&dir.join("a.txt"))?;
    let root_json = read(root_path)?;
    let start = Instant::now();
    let root = TrustedRoot::from_json(&root_json).map_err(|e| e.to_string())?;
    let root_parse = start.elapsed();
    let policy = KeylessPolicy::new(IdentityMatcher::exact(IDENTITY, ISSUER));
    let once = || -> Result<(), String> {
        let bundle = Bundle::from_json(&bundle_json).map_err(|e| e.to_string())?;
        verify_keyless(&bundle, Artifact::from_bytes(&artifact), &root, &policy)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    for _ in 0..runs / 10 + 1 {
        once()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        once()?;
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "{name:<22} median {:>8.1} µs  p10 {:>8.1} µs  p90 {:>8.1} µs  ({runs} runs; trusted root parsed once in {:.1} µs)",
        percentile(&times, 50).as_secs_f64() * 1e6,
        percentile(&times, 10).as_secs_f64() * 1e6,
        percentile(&times, 90).as_secs_f64() * 1e6,
        root_parse.as_secs_f64() * 1e6,
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let runs = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let production = testdata().join(
        "sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json",
    );
    bench("happy-path-v0.3", &production, runs)?;
    let rekor2 =
        testdata().join("sigstore-conformance/bundle-verify/rekor2-happy-path/trusted_root.json");
    bench("rekor2-happy-path", &rekor2, runs)?;
    Ok(())
}
