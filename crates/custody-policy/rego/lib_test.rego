# Tests of data.custody.lib (run by `cargo test -p custody-policy` and `custody policy test --builtin`).
package custody.lib_test

import data.custody.lib

key_a := "aa00000000000000000000000000000000000000000000000000000000000000"

key_b := "bb00000000000000000000000000000000000000000000000000000000000000"

key_c := "cc00000000000000000000000000000000000000000000000000000000000000"

key_signer(id) := {"kind": "key", "label": id, "key_id": id, "algorithm": "ecdsa-p256", "key_bits": 256, "identity": null, "issuer": null, "claims": {}}

cert_signer(identity, issuer) := {"kind": "certificate", "label": sprintf("%s (%s)", [identity, issuer]), "key_id": null, "algorithm": "ecdsa-p256", "key_bits": 256, "identity": identity, "issuer": issuer, "claims": {}}

signature(signer) := {"source": "a.sigstore.json", "bundle_digest": "sha256:00", "kind": "signature", "predicate_type": null, "statement": null, "signer": signer, "tlog": [], "logged": false, "times": []}

custody_provenance(opts) := {
	"_type": "https://in-toto.io/Statement/v1",
	"subject": [{"name": "app", "digest": {"sha256": "00"}}],
	"predicateType": "https://slsa.dev/provenance/v1",
	"predicate": {
		"buildDefinition": {
			"buildType": "https://custody.dev/build/v1",
			"externalParameters": {
				"command": ["make"],
				"hermetic": object.get(opts, "hermetic", false),
				"source": {"repository": "https://github.com/acme/app", "commit": "abc", "ref": object.get(opts, "ref", "refs/heads/main"), "dirty": object.get(opts, "dirty", false)},
			},
			"internalParameters": {"pinning": {"findings": object.get(opts, "unpinned", 0)}},
			"resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/heads/main", "digest": {"gitCommit": "abc"}}],
		},
		"runDetails": {
			"builder": {"id": object.get(opts, "builder", "https://custody.dev/builder/local/ci-1")},
			"metadata": {"finishedOn": object.get(opts, "finished", "2026-11-20T00:00:00Z")},
		},
	},
}

github_provenance := {
	"_type": "https://in-toto.io/Statement/v1",
	"subject": [{"name": "app", "digest": {"sha256": "00"}}],
	"predicateType": "https://slsa.dev/provenance/v1",
	"predicate": {
		"buildDefinition": {
			"buildType": "https://actions.github.io/buildtypes/workflow/v1",
			"externalParameters": {"workflow": {"ref": "refs/tags/v1.2.0", "repository": "https://github.com/acme/app", "path": ".github/workflows/release.yml"}},
			"resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/tags/v1.2.0", "digest": {"gitCommit": "abc"}}],
		},
		"runDetails": {"builder": {"id": "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0"}},
	},
}

attestation(signer, st) := {"source": "app.intoto.sigstore.json", "bundle_digest": "sha256:01", "kind": "attestation", "predicate_type": st.predicateType, "statement": st, "signer": signer, "tlog": [], "logged": false, "times": []}

logged(e) := object.union(e, {"logged": true, "tlog": [{"log_id": "00", "log_index": 7, "integrated_time": null}]})

rebuild(signer, result) := attestation(signer, {"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "urn:custody:predicate:rebuild:v1", "predicate": {"result": result}})

doc(evidence) := {"artifact": {"digest": "sha256:00", "name": "app"}, "environment": {"name": "prod", "stage": "production"}, "time": "2026-11-26T00:00:00Z", "evidence": evidence, "rejected": []}

trust_a := {"custody": {"config": {"signers": {"keys": [key_a], "threshold": 1}}}}

codes(vs) := {v.code | some v in vs}

# --- signers -------------------------------------------------------------------------------

# (regorus: bind rule constants to locals before a `with input as` expression that uses them
# as function arguments.)
test_k_of_n_keys_counts_distinct_signers if {
	ab := [key_a, key_b]
	a := [key_a]
	lib.signed_by_keys(ab, 2) with input as doc([signature(key_signer(key_a)), signature(key_signer(key_b))])
	not lib.signed_by_keys(ab, 2) with input as doc([signature(key_signer(key_a)), signature(key_signer(key_a))])
	not lib.signed_by_keys(a, 1) with input as doc([signature(key_signer(key_c))])
}

test_key_ids_match_case_insensitively if {
	a := [upper(key_a)]
	lib.signed_by_keys(a, 1) with input as doc([signature(key_signer(key_a))])
}

test_identities_exact_and_regexp if {
	ev := [signature(cert_signer("https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1", "https://token.actions.githubusercontent.com"))]
	lib.signed_by_identities([{"identity_regexp": "https://github.com/acme/.*", "issuer": "https://token.actions.githubusercontent.com"}], 1) with input as doc(ev)
	not lib.signed_by_identities([{"identity_regexp": "https://github.com/evil/.*", "issuer": "https://token.actions.githubusercontent.com"}], 1) with input as doc(ev)
	not lib.signed_by_identities([{"identity_regexp": "https://github.com/acme/.*", "issuer": "https://accounts.google.com"}], 1) with input as doc(ev)
}

test_regexp_is_anchored if {
	ev := [signature(cert_signer("https://evil.example/https://github.com/acme/x", "https://issuer"))]
	not lib.signed_by_identities([{"identity_regexp": "https://github.com/acme/.*", "issuer": "https://issuer"}], 1) with input as doc(ev)
}

test_no_trusted_signer_is_a_violation if {
	vs := lib.violations with input as doc([signature(key_signer(key_c))]) with data.custody.config as trust_a.custody.config
	"signers-below-threshold" in codes(vs)
}

test_unconfigured_policy_trusts_nobody if {
	vs := lib.violations with input as doc([signature(key_signer(key_a))])
	"signers-below-threshold" in codes(vs)
}

test_threshold_two if {
	cfg := {"signers": {"keys": [key_a, key_b], "threshold": 2}, "provenance": {"required": false}}
	vs1 := lib.violations with input as doc([signature(key_signer(key_a))]) with data.custody.config as cfg
	"signers-below-threshold" in codes(vs1)
	vs2 := lib.violations with input as doc([signature(key_signer(key_a)), signature(key_signer(key_b))]) with data.custody.config as cfg
	count(vs2) == 0
}

# --- provenance ----------------------------------------------------------------------------

test_provenance_required_by_default if {
	vs := lib.violations with input as doc([signature(key_signer(key_a))]) with data.custody.config as trust_a.custody.config
	codes(vs) == {"provenance-missing"}
}

test_provenance_from_untrusted_signer_does_not_count if {
	vs := lib.violations with input as doc([signature(key_signer(key_a)), attestation(key_signer(key_c), custody_provenance({}))]) with data.custody.config as trust_a.custody.config
	"provenance-missing" in codes(vs)
}

test_good_provenance_passes if {
	vs := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({}))]) with data.custody.config as trust_a.custody.config
	count(vs) == 0
}

test_builder_pattern if {
	cfg := object.union(trust_a.custody.config, {"provenance": {"builders": ["https://github.com/acme/*"]}})
	vs := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({}))]) with data.custody.config as cfg
	codes(vs) == {"provenance-builder"}
	ok := lib.violations with input as doc([attestation(key_signer(key_a), github_provenance)]) with data.custody.config as cfg
	count(ok) == 0
}

test_repository_and_ref_patterns if {
	cfg := object.union(trust_a.custody.config, {"provenance": {"repositories": ["https://github.com/acme/app"], "refs": ["refs/tags/v*"]}})
	vs := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({}))]) with data.custody.config as cfg
	codes(vs) == {"provenance-ref"}
	ok := lib.violations with input as doc([attestation(key_signer(key_a), github_provenance)]) with data.custody.config as cfg
	count(ok) == 0
	tag := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({"ref": "refs/tags/v2.0.0"}))]) with data.custody.config as cfg
	count(tag) == 0
	other := object.union(cfg, {"provenance": {"repositories": ["https://github.com/other/*"]}})
	vs2 := lib.violations with input as doc([attestation(key_signer(key_a), github_provenance)]) with data.custody.config as other
	codes(vs2) == {"provenance-repository"}
}

test_source_from_github_provenance if {
	lib.source_repository(github_provenance) == "https://github.com/acme/app"
	lib.source_ref(github_provenance) == "refs/tags/v1.2.0"
}

test_clean_tree if {
	cfg := object.union(trust_a.custody.config, {"provenance": {"clean": true}})
	vs := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({"dirty": true}))]) with data.custody.config as cfg
	codes(vs) == {"provenance-dirty"}
	ok := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({}))]) with data.custody.config as cfg
	count(ok) == 0
}

test_hermetic if {
	cfg := object.union(trust_a.custody.config, {"provenance": {"hermetic": true}})
	vs := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({}))]) with data.custody.config as cfg
	codes(vs) == {"provenance-not-hermetic"}
	ok := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({"hermetic": true}))]) with data.custody.config as cfg
	count(ok) == 0
}

test_pinned_dependencies if {
	cfg := object.union(trust_a.custody.config, {"provenance": {"pinned": true}})
	vs := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({"unpinned": 3}))]) with data.custody.config as cfg
	codes(vs) == {"provenance-unpinned"}
	ok := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({}))]) with data.custody.config as cfg
	count(ok) == 0
}

test_max_age if {
	cfg := object.union(trust_a.custody.config, {"provenance": {"max_age_days": 30}})
	old := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({"finished": "2026-09-01T00:00:00Z"}))]) with data.custody.config as cfg
	codes(old) == {"provenance-too-old"}
	fresh := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({"finished": "2026-11-01T00:00:00Z"}))]) with data.custody.config as cfg
	count(fresh) == 0
}

# --- reproducibility, logging, attestation types, algorithms ---------------------------------

test_reproducible if {
	cfg := object.union(trust_a.custody.config, {"reproducible": true})
	prov := attestation(key_signer(key_a), custody_provenance({}))
	vs := lib.violations with input as doc([prov]) with data.custody.config as cfg
	codes(vs) == {"not-reproducible"}
	mismatch := lib.violations with input as doc([prov, rebuild(key_signer(key_a), "mismatch")]) with data.custody.config as cfg
	codes(mismatch) == {"not-reproducible"}
	ok := lib.violations with input as doc([prov, rebuild(key_signer(key_a), "match")]) with data.custody.config as cfg
	count(ok) == 0
	untrusted := lib.violations with input as doc([prov, rebuild(key_signer(key_c), "match")]) with data.custody.config as cfg
	codes(untrusted) == {"not-reproducible"}
}

test_logged_in_trusted_log if {
	cfg := object.union(trust_a.custody.config, {"tlog": true})
	prov := attestation(key_signer(key_a), custody_provenance({}))
	vs := lib.violations with input as doc([prov]) with data.custody.config as cfg
	codes(vs) == {"not-logged"}
	ok := lib.violations with input as doc([logged(prov)]) with data.custody.config as cfg
	count(ok) == 0
}

test_required_attestation_types if {
	cfg := object.union(trust_a.custody.config, {"required_attestations": ["https://spdx.dev/Document"]})
	prov := attestation(key_signer(key_a), custody_provenance({}))
	vs := lib.violations with input as doc([prov]) with data.custody.config as cfg
	codes(vs) == {"attestation-missing"}
	sbom := attestation(key_signer(key_a), {"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "https://spdx.dev/Document", "predicate": {}})
	ok := lib.violations with input as doc([prov, sbom]) with data.custody.config as cfg
	count(ok) == 0
}

test_algorithms_and_key_sizes if {
	rsa_small := object.union(key_signer(key_a), {"algorithm": "rsa-pss-sha256", "key_bits": 2048})
	cfg := object.union(trust_a.custody.config, {"min_rsa_bits": 3072})
	vs := lib.violations with input as doc([attestation(rsa_small, custody_provenance({}))]) with data.custody.config as cfg
	codes(vs) == {"signer-algorithm"}
	ed_only := object.union(trust_a.custody.config, {"algorithms": ["ed25519"]})
	vs2 := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({}))]) with data.custody.config as ed_only
	codes(vs2) == {"signer-algorithm"}
	ok := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({}))]) with data.custody.config as trust_a.custody.config
	count(ok) == 0
}

test_rejected_evidence_can_deny if {
	cfg := object.union(trust_a.custody.config, {"deny_rejected": true})
	d := object.union(doc([attestation(key_signer(key_a), custody_provenance({}))]), {"rejected": [{"source": "x.sigstore.json", "code": "signature.invalid", "reason": "bad"}]})
	vs := lib.violations with input as d with data.custody.config as cfg
	codes(vs) == {"evidence-rejected"}
	ok := lib.violations with input as d with data.custody.config as trust_a.custody.config
	count(ok) == 0
}

# --- stages ----------------------------------------------------------------------------------

test_stage_overrides if {
	cfg := object.union(trust_a.custody.config, {"stages": {"production": {"provenance": {"hermetic": true}}}})
	prov := attestation(key_signer(key_a), custody_provenance({}))
	prod := lib.violations with input as doc([prov]) with data.custody.config as cfg
	codes(prod) == {"provenance-not-hermetic"}
	rc := object.union(doc([prov]), {"environment": {"name": "staging", "stage": "release-candidate"}})
	ok := lib.violations with input as rc with data.custody.config as cfg
	count(ok) == 0
	none := object.union(doc([prov]), {"environment": null})
	ok2 := lib.violations with input as none with data.custody.config as cfg
	count(ok2) == 0
}

test_violations_carry_fix_and_signer if {
	cfg := object.union(trust_a.custody.config, {"provenance": {"clean": true}})
	vs := lib.violations with input as doc([attestation(key_signer(key_a), custody_provenance({"dirty": true}))]) with data.custody.config as cfg
	some v in vs
	v.code == "provenance-dirty"
	v.signer == key_a
	v.evidence == "app.intoto.sigstore.json"
	contains(v.fix, "clean checkout")
}
