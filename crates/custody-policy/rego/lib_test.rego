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

# A `custody rebuild` attestation about the artifact (digest 00): the overall result and the
# entry for the artifact agree, as custody writes them.
rebuild(signer, result) := rebuild_of(signer, result, [{"name": "app", "recorded": "00", "rebuilt": rebuilt_digest(result), "match": result == "match"}])

rebuilt_digest("match") := "00"

rebuilt_digest(result) := "ff" if result != "match"

rebuild_of(signer, result, subjects) := object.union(attestation(signer, {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "app", "digest": {"sha256": "00"}}], "predicateType": "urn:custody:predicate:rebuild:v1", "predicate": {"result": result, "subjects": subjects}}), {"source": "app.rebuild.sigstore.json"})

with_principal(e, p) := object.union(e, {"signer": object.union(e.signer, {"principal": p})})

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

# key_a builds, key_b (an independent rebuilder) rebuilds; both trusted.
reproducible_cfg := {"signers": {"keys": [key_a, key_b], "threshold": 1}, "reproducible": true}

test_reproducible if {
	cfg := reproducible_cfg
	prov := attestation(key_signer(key_a), custody_provenance({}))
	vs := lib.violations with input as doc([prov]) with data.custody.config as cfg
	codes(vs) == {"not-reproducible"}
	mismatch := lib.violations with input as doc([prov, rebuild(key_signer(key_b), "mismatch")]) with data.custody.config as cfg
	codes(mismatch) == {"rebuild-differs"}
	ok := lib.violations with input as doc([prov, rebuild(key_signer(key_b), "match")]) with data.custody.config as cfg
	count(ok) == 0
	lib.reproduced with input as doc([prov, rebuild(key_signer(key_b), "match")]) with data.custody.config as cfg
	untrusted := lib.violations with input as doc([prov, rebuild(key_signer(key_c), "match")]) with data.custody.config as cfg
	codes(untrusted) == {"not-reproducible"}
}

# The builder rebuilding its own artifact proves nothing: same key, same principal (another
# key of the same person or machine), same certificate identity, or a CI identity whose
# workflow is the provenance's builder. Each is denied with rebuild-not-independent, naming
# the tie; an independent rebuild beside it still counts.
test_attack_self_signed_rebuild_does_not_prove_reproducibility if {
	cfg := reproducible_cfg
	prov := attestation(key_signer(key_a), custody_provenance({}))
	same_key := doc([prov, rebuild(key_signer(key_a), "match")])
	not lib.reproduced with input as same_key with data.custody.config as cfg
	vs := lib.violations with input as same_key with data.custody.config as cfg
	codes(vs) == {"rebuild-not-independent"}
	[v] := by_code(vs, "rebuild-not-independent")
	contains(v.msg, sprintf("the rebuild of sha256:00 in app.rebuild.sigstore.json was signed by %s", [key_a]))
	contains(v.msg, sprintf("same key %s", [key_a]))
	contains(v.fix, "independent builder")
	v.evidence == "app.rebuild.sigstore.json"

	# Another key, the same principal.
	same_principal := doc([with_principal(prov, "ci-bot"), with_principal(rebuild(key_signer(key_b), "match"), "ci-bot")])
	vp := lib.violations with input as same_principal with data.custody.config as cfg
	codes(vp) == {"rebuild-not-independent"}
	[p] := by_code(vp, "rebuild-not-independent")
	contains(p.msg, "same principal ci-bot")

	# Keyless: the same identity, or the provenance's own builder workflow.
	wf := "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0"
	gh := "https://token.actions.githubusercontent.com"
	cfg_id := {"signers": {"identities": [{"identity_regexp": ".*", "issuer": gh}]}, "reproducible": true}
	gh_prov := attestation(cert_signer(wf, gh), github_provenance)
	same_identity := doc([gh_prov, rebuild(cert_signer(wf, gh), "match")])
	codes(lib.violations) == {"rebuild-not-independent"} with input as same_identity with data.custody.config as cfg_id
	other := "https://github.com/acme/app/.github/workflows/rebuild.yml@refs/heads/main"
	rebuilder := object.union(cert_signer(other, gh), {"claims": {"build_signer_uri": wf}})
	same_builder := doc([gh_prov, rebuild(rebuilder, "match")])
	vb := lib.violations with input as same_builder with data.custody.config as cfg_id
	codes(vb) == {"rebuild-not-independent"}
	[b] := by_code(vb, "rebuild-not-independent")
	contains(b.msg, sprintf("same builder %s", [wf]))

	# A provenance by an untrusted signer still ties its signer: it was the builder.
	cfg_b := {"signers": {"keys": [key_b]}, "reproducible": true, "provenance": {"required": false}}
	untrusted_builder := doc([attestation(key_signer(key_c), custody_provenance({})), rebuild(key_signer(key_c), "match"), signature(key_signer(key_b))])
	not lib.reproduced with input as untrusted_builder with data.custody.config as cfg_b

	# An independent rebuild next to the builder's own: reproduced, no deny.
	both := doc([prov, rebuild(key_signer(key_a), "match"), rebuild(key_signer(key_b), "match")])
	lib.reproduced with input as both with data.custody.config as cfg
	count(lib.violations) == 0 with input as both with data.custody.config as cfg
}

# A rebuild that DIFFERS never satisfies `reproducible`, however it is dressed: an overall
# "match" whose entry for the artifact differs, an entry for another artifact only, or an
# overall "mismatch". A differing independent rebuild denies even beside a matching one.
test_attack_differs_rebuild_does_not_satisfy_reproduced if {
	cfg := reproducible_cfg
	prov := attestation(key_signer(key_a), custody_provenance({}))
	differs := [{"name": "app", "recorded": "00", "rebuilt": "ff", "match": false}]
	forged := [{"name": "app", "recorded": "00", "rebuilt": "ff", "match": true}]
	elsewhere := [{"name": "lib", "recorded": "11", "rebuilt": "11", "match": true}]
	mismatch_overall := [{"name": "app", "recorded": "00", "rebuilt": "00", "match": true}]
	cases := [
		rebuild_of(key_signer(key_b), "match", differs),
		rebuild_of(key_signer(key_b), "match", forged),
		rebuild_of(key_signer(key_b), "match", elsewhere),
		rebuild_of(key_signer(key_b), "match", []),
		rebuild_of(key_signer(key_b), "mismatch", mismatch_overall),
		rebuild_of(key_signer(key_b), "DIFFERS", differs),
	]
	every r in cases {
		not lib.reproduced with input as doc([prov, r]) with data.custody.config as cfg
		codes(lib.violations) == {"rebuild-differs"} with input as doc([prov, r]) with data.custody.config as cfg
	}
	vs := lib.violations with input as doc([prov, cases[0]]) with data.custody.config as cfg
	[v] := by_code(vs, "rebuild-differs")
	contains(v.msg, sprintf("the rebuild of sha256:00 in app.rebuild.sigstore.json (signed by %s) did not reproduce it: rebuilt [\"ff\"] where [\"00\"] was recorded", [key_b]))
	contains(v.fix, "never counts as reproduced")
	ve := lib.violations with input as doc([prov, cases[2]]) with data.custody.config as cfg
	[e] := by_code(ve, "rebuild-differs")
	contains(e.msg, "no entry for sha256:00 in predicate.subjects")

	# A matching independent rebuild does not outvote one that differs.
	split := doc([prov, rebuild(key_signer(key_b), "match"), rebuild(key_signer(key_b), "mismatch")])
	codes(lib.violations) == {"rebuild-differs"} with input as split with data.custody.config as cfg
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

# --- release facts: revocations and approvals ----------------------------------------------

key_d := "dd00000000000000000000000000000000000000000000000000000000000000"

key_e := "ee00000000000000000000000000000000000000000000000000000000000000"

principal_signer(name, id) := object.union(key_signer(id), {"principal": name})

approval_statement(env, at) := {
	"_type": "https://in-toto.io/Statement/v1",
	"subject": [{"name": "app", "digest": {"sha256": "00"}}],
	"predicateType": "https://custody.dev/approval/v1",
	"predicate": {"environment": env, "approver": "whoever", "approvedAt": at, "comment": null},
}

# An approval of the artifact for `env`, signed by principal `name` with key `id`, at `at`.
approval(name, id, env, at) := attestation(principal_signer(name, id), approval_statement(env, at))

recent := "2026-11-25T00:00:00Z"

nine_days_ago := "2026-11-17T00:00:00Z"

two_of_release_approvers := {"required": 2, "group": "release-approvers", "members": ["alice", "bob", "carol", "dave"], "max_age_seconds": 604800}

# An input asking to enter prod, which takes two approvals; `promotion` is input.promotion.
release_doc(evidence, promotion) := object.union(doc(evidence), {
	"environment": {"name": "prod", "stage": "production", "approvals": two_of_release_approvers},
	"promotion": promotion,
})

by_code(vs, code) := [v | some v in vs; v.code == code]

test_approvals_k_of_n_reached if {
	d := release_doc([approval("alice", key_a, "prod", recent), approval("bob", key_b, "prod", recent)], null)
	vs := lib.violations with input as d
	not "approvals-missing" in codes(vs)
}

test_approvals_below_k_deny_with_fix if {
	d := release_doc([approval("alice", key_a, "prod", recent)], {"requested_by": "dave", "from": "staging"})
	vs := lib.violations with input as d
	[v] := by_code(vs, "approvals-missing")
	contains(v.msg, "1 of 2 approvals needed for environment prod from group release-approvers")
	contains(v.msg, "counted: alice")
	v.fix == "ask 1 more members of group release-approvers to run: custody approve sha256:00 --env prod --key <their key>"
	v.approvals.counted == ["alice"]
	v.artifact == "sha256:00"
}

test_approvals_distinct_principals if {
	# Two approvals by one person (with two keys) count once.
	d := release_doc([approval("alice", key_a, "prod", recent), approval("alice", key_b, "prod", recent)], null)
	vs := lib.violations with input as d
	[v] := by_code(vs, "approvals-missing")
	contains(v.msg, "1 of 2")
	v.approvals.not_counted == []
}

test_approvals_builder_excluded if {
	prov := attestation(principal_signer("alice", key_a), custody_provenance({}))
	d := release_doc([prov, approval("alice", key_a, "prod", recent), approval("bob", key_b, "prod", recent)], null)
	vs := lib.violations with input as d
	[v] := by_code(vs, "approvals-missing")
	v.approvals.not_counted == ["alice: is the builder"]
	contains(v.msg, "not counted: alice: is the builder")
	ok := lib.violations with input as release_doc([prov, approval("carol", key_c, "prod", recent), approval("bob", key_b, "prod", recent)], null)
	not "approvals-missing" in codes(ok)
}

test_approvals_promoter_excluded if {
	ev := [approval("alice", key_a, "prod", recent), approval("dave", key_d, "prod", recent)]
	vs := lib.violations with input as release_doc(ev, {"requested_by": "dave", "from": "staging"})
	[v] := by_code(vs, "approvals-missing")
	v.approvals.not_counted == ["dave: is the promoter"]
	ok := lib.violations with input as release_doc(ev, {"requested_by": "erin", "from": "staging"})
	not "approvals-missing" in codes(ok)
}

test_approvals_non_member_excluded if {
	d := release_doc([approval("alice", key_a, "prod", recent), approval("eve", key_e, "prod", recent)], null)
	vs := lib.violations with input as d
	[v] := by_code(vs, "approvals-missing")
	v.approvals.not_counted == ["eve: not in group release-approvers"]
}

test_approvals_unknown_signer_excluded if {
	unknown := attestation(key_signer(key_e), approval_statement("prod", recent))
	d := release_doc([approval("alice", key_a, "prod", recent), unknown], null)
	vs := lib.violations with input as d
	[v] := by_code(vs, "approvals-missing")
	v.approvals.not_counted == [sprintf("%s: not a known principal", [key_e])]
}

test_approvals_expired_excluded if {
	d := release_doc([approval("alice", key_a, "prod", recent), approval("carol", key_c, "prod", nine_days_ago)], null)
	vs := lib.violations with input as d
	[v] := by_code(vs, "approvals-missing")
	v.approvals.not_counted == ["carol: approval is 9d old (max 7d)"]
	contains(v.msg, "carol: approval is 9d old (max 7d)")
}

test_approvals_age_from_the_log_not_the_claim if {
	# approvedAt says recent; the verified log entry says nine days ago.
	carol := object.union(approval("carol", key_c, "prod", recent), {"tlog": [{"log_id": "00", "log_index": 7, "integrated_time": nine_days_ago}], "logged": true})
	vs := lib.violations with input as release_doc([approval("alice", key_a, "prod", recent), carol], null)
	[v] := by_code(vs, "approvals-missing")
	v.approvals.not_counted == ["carol: approval is 9d old (max 7d)"]
	# ...and the other way round: an old claim, a recent log entry.
	carol2 := object.union(approval("carol", key_c, "prod", nine_days_ago), {"tlog": [{"log_id": "00", "log_index": 7, "integrated_time": recent}], "logged": true})
	ok := lib.violations with input as release_doc([approval("alice", key_a, "prod", recent), carol2], null)
	not "approvals-missing" in codes(ok)
}

test_approvals_without_max_age_never_expire if {
	no_max := object.union(two_of_release_approvers, {"max_age_seconds": null})
	d := object.union(release_doc([approval("alice", key_a, "prod", recent), approval("carol", key_c, "prod", "2020-01-01T00:00:00Z")], null), {"environment": {"approvals": no_max}})
	vs := lib.violations with input as d
	not "approvals-missing" in codes(vs)
}

test_approvals_bad_or_future_times_do_not_count if {
	d := release_doc([approval("alice", key_a, "prod", recent), approval("carol", key_c, "prod", "last tuesday")], null)
	vs := lib.violations with input as d
	[v] := by_code(vs, "approvals-missing")
	v.approvals.not_counted == ["carol: approval time unknown (max age 7d)"]
	f := release_doc([approval("alice", key_a, "prod", recent), approval("carol", key_c, "prod", "2027-01-01T00:00:00Z")], null)
	fvs := lib.violations with input as f
	[fv] := by_code(fvs, "approvals-missing")
	fv.approvals.not_counted == ["carol: approval is dated 36d in the future"]
}

test_approvals_wrong_environment_excluded if {
	d := release_doc([approval("alice", key_a, "prod", recent), approval("bob", key_b, "staging", recent)], null)
	vs := lib.violations with input as d
	[v] := by_code(vs, "approvals-missing")
	v.approvals.not_counted == ["bob: approval is for environment staging, not prod"]
}

test_approvals_list_every_reason if {
	prov := attestation(principal_signer("alice", key_a), custody_provenance({}))
	ev := [
		prov,
		approval("alice", key_a, "prod", recent),
		approval("eve", key_e, "prod", recent),
		approval("carol", key_c, "prod", nine_days_ago),
		approval("dave", key_d, "prod", recent),
	]
	vs := lib.violations with input as release_doc(ev, {"requested_by": "dave", "from": "staging"})
	[v] := by_code(vs, "approvals-missing")
	contains(v.msg, "0 of 2")
	v.approvals.not_counted == ["alice: is the builder", "carol: approval is 9d old (max 7d)", "dave: is the promoter", "eve: not in group release-approvers"]
	contains(v.fix, "ask 2 more members")
}

test_approvals_counted_once_even_with_a_stale_duplicate if {
	d := release_doc([approval("alice", key_a, "prod", recent), approval("alice", key_a, "prod", nine_days_ago)], null)
	vs := lib.violations with input as d
	[v] := by_code(vs, "approvals-missing")
	v.approvals.counted == ["alice"]
	v.approvals.not_counted == []
}

test_no_approval_rule_no_approval_check if {
	vs := lib.violations with input as doc([])
	not "approvals-missing" in codes(vs)
	none := object.union(doc([]), {"environment": {"name": "prod", "stage": "production", "approvals": null}})
	vs2 := lib.violations with input as none
	not "approvals-missing" in codes(vs2)
}

test_revoked_evidence_denies if {
	rej := {"source": "app.intoto.sigstore.json", "bundle_digest": "sha256:01", "code": "revoked", "reason": sprintf("revoked: key %s (revocation #3: key stolen)", [key_a]), "signer": key_a, "revocation": {"id": 3, "target": sprintf("key:%s", [key_a]), "reason": "key stolen"}}
	d := object.union(doc([attestation(key_signer(key_b), custody_provenance({}))]), {"rejected": [rej]})
	cfg := {"signers": {"keys": [key_b]}, "deny_rejected": true}
	vs := lib.violations with input as d with data.custody.config as cfg
	codes(vs) == {"evidence-revoked"}
	[v] := by_code(vs, "evidence-revoked")
	v.signer == key_a
	v.evidence == "app.intoto.sigstore.json"
	contains(v.msg, "revocation #3: key stolen")
	contains(v.fix, "not revoked")
	# An ordinary rejection is not a revocation.
	other := object.union(d, {"rejected": [{"source": "x.sigstore.json", "code": "signature.invalid", "reason": "bad"}]})
	ok := lib.violations with input as other with data.custody.config as {"signers": {"keys": [key_b]}}
	count(ok) == 0
}

test_revoked_artifact_denies if {
	d := object.union(doc([attestation(key_signer(key_a), custody_provenance({}))]), {"artifact": {"revoked": {"id": 4, "target": "digest:sha256:00", "reason": "backdoored dependency"}}})
	vs := lib.violations with input as d with data.custody.config as trust_a.custody.config
	codes(vs) == {"artifact-revoked"}
	[v] := by_code(vs, "artifact-revoked")
	v.msg == "artifact sha256:00 is revoked (revocation #4: backdoored dependency)"
}

test_duration_text if {
	lib.duration_text(604800) == "7d"
	lib.duration_text(777600) == "9d"
	lib.duration_text(93600) == "1d2h"
	lib.duration_text(5400) == "1h30m"
	lib.duration_text(7200) == "2h"
	lib.duration_text(120) == "2m"
	lib.duration_text(42) == "42s"
}

test_release_violations_alone if {
	d := object.union(release_doc([approval("alice", key_a, "prod", recent)], null), {"artifact": {"revoked": {"id": 1, "target": "digest:sha256:00", "reason": "r"}}})
	vs := lib.release_violations with input as d
	codes(vs) == {"approvals-missing", "artifact-revoked"}
}

# --- retired keys ------------------------------------------------------------------------------

retired_rejection(successor) := {
	"source": "old.intoto.sigstore.json",
	"bundle_digest": "sha256:02",
	"code": "key.retired",
	"reason": sprintf("signed by retired key %s (retired at log index 42, successor %v; rotated), and it has no verified log entry, and an unlogged signature by a retired key cannot be shown to predate the retirement: re-sign with the successor key", [key_a, successor]),
	"signer": key_a,
	"retirement": {"key_id": key_a, "cut": 42, "successor": successor, "reason": "rotated"},
}

test_retired_key_evidence_warns_and_does_not_deny if {
	d := object.union(doc([attestation(key_signer(key_b), custody_provenance({}))]), {"rejected": [retired_rejection(key_b)]})
	# Not a deny, not even with deny_rejected: it is not tampering, it just does not count.
	cfg := {"signers": {"keys": [key_a, key_b]}, "deny_rejected": true}
	vs := lib.violations with input as d with data.custody.config as cfg
	count(vs) == 0
	ws := lib.warnings with input as d with data.custody.config as cfg
	codes(ws) == {"evidence-key-retired"}
	[w] := by_code(ws, "evidence-key-retired")
	w.signer == key_a
	w.evidence == "old.intoto.sigstore.json"
	w.artifact == "sha256:00"
	startswith(w.msg, "old.intoto.sigstore.json for sha256:00 does not count: signed by retired key aa00")
	contains(w.fix, sprintf("with the successor key %s", [key_b]))
	contains(w.fix, "before log index 42 still counts")
}

test_retired_key_without_successor_says_a_current_key if {
	d := object.union(doc([]), {"rejected": [retired_rejection(null)]})
	ws := lib.warnings with input as d
	[w] := by_code(ws, "evidence-key-retired")
	contains(w.fix, "with a current key")
}

test_what_remains_decides_after_a_retired_key_is_taken_out if {
	# The retired key's provenance was the only one: the ordinary rules deny, once each.
	d := object.union(doc([]), {"rejected": [retired_rejection(key_b)]})
	cfg := {"signers": {"keys": [key_a, key_b]}}
	vs := lib.violations with input as d with data.custody.config as cfg
	codes(vs) == {"signers-below-threshold", "provenance-missing"}
	ws := lib.warnings with input as d with data.custody.config as cfg
	codes(ws) == {"evidence-key-retired"}
}

test_ordinary_rejections_do_not_warn if {
	d := object.union(doc([]), {"rejected": [{"source": "x.sigstore.json", "code": "signature.invalid", "reason": "bad"}]})
	ws := lib.warnings with input as d
	count(ws) == 0
}

# --- admission follows releases (input.release) ------------------------------------------------

# The release state of prod for the artifact (sha256:00): current release #7 is sha256:cc, one
# earlier release admitted; `candidate` fields override the defaults.
release_state(candidate) := {
	"environment": "prod",
	"current": {"seq": 7, "digest": "sha256:cc"},
	"allow_previous": 1,
	"candidate": object.union({"digest": "sha256:00", "is_current": false, "release_seq": null, "releases_behind": null, "quarantine": null, "approvals": null}, candidate),
}

with_release(r) := object.union(doc([]), {"release": r})


test_release_current_is_admitted if {
	r := release_state({"digest": "sha256:cc", "is_current": true, "release_seq": 7, "releases_behind": 0})
	vs := lib.release_violations with input as with_release(r)
	count(vs) == 0
}

test_release_previous_within_allow_previous_is_admitted if {
	r := release_state({"release_seq": 6, "releases_behind": 1})
	vs := lib.release_violations with input as with_release(r)
	count(vs) == 0
	two := object.union(r, {"allow_previous": 2, "candidate": object.union(r.candidate, {"release_seq": 5, "releases_behind": 2})})
	count(lib.release_violations) == 0 with input as with_release(two)
}

test_release_superseded_is_denied_with_release_not_current if {
	r := release_state({"release_seq": 5, "releases_behind": 2})
	vs := lib.release_violations with input as with_release(r)
	codes(vs) == {"release-not-current"}
	[v] := by_code(vs, "release-not-current")
	v.msg == "sha256:00 is not admitted to environment prod: it is release #5, 2 releases behind the current release #7 sha256:cc; prod admits its current release and the 1 before it"
	v.fix == "promote it with `custody promote sha256:00 --to prod`, or deploy the current release sha256:cc"
	v.artifact == "sha256:00"
	v.environment == "prod"
	codes(lib.release_state_violations) == {"release-not-current"} with input as with_release(r)
	# allow_previous 0: even the one just before is denied.
	only := object.union(r, {"allow_previous": 0, "candidate": object.union(r.candidate, {"release_seq": 6, "releases_behind": 1})})
	[o] := by_code(lib.release_violations, "release-not-current") with input as with_release(only)
	endswith(o.msg, "prod admits only its current release")
}

test_release_never_released_is_denied if {
	r := release_state({})
	[v] := by_code(lib.release_violations, "release-not-current") with input as with_release(r)
	v.msg == "sha256:00 is not admitted to environment prod: it is not one of its releases (current: release #7 sha256:cc); prod admits its current release and the 1 before it"
	# An environment whose history is empty has no current release to name.
	empty := object.union(r, {"current": null})
	[e] := by_code(lib.release_violations, "release-not-current") with input as with_release(empty)
	contains(e.msg, "(current: none)")
	e.fix == "promote it with `custody promote sha256:00 --to prod`"
}

test_release_quarantined_is_denied if {
	q := {"revocation_id": 4, "target": "key:9f1c", "reason": "key stolen", "at": "2026-11-25T00:00:00Z"}
	r := release_state({"digest": "sha256:cc", "is_current": true, "release_seq": 7, "releases_behind": 0, "quarantine": q})
	vs := lib.release_violations with input as with_release(r)
	codes(vs) == {"release-quarantined"}
	[v] := by_code(vs, "release-quarantined")
	v.msg == "sha256:cc is quarantined in environment prod by revocation #4 of key:9f1c (key stolen)"
	startswith(v.fix, "roll back to a release that verifies (`custody rollback prod")
	v.environment == "prod"
}

test_release_unapproved_is_denied if {
	a := {"required": 2, "group": "release-approvers", "approved_by": ["alice", "alice"]}
	r := release_state({"digest": "sha256:cc", "is_current": true, "release_seq": 7, "releases_behind": 0, "approvals": a})
	vs := lib.release_violations with input as with_release(r)
	codes(vs) == {"release-unapproved"}
	[v] := by_code(vs, "release-unapproved")
	v.msg == "sha256:cc has 1 of 2 approvals environment prod requires from group release-approvers (approved by: alice)"
	v.fix == "ask 1 more members of group release-approvers to run: custody approve sha256:cc --env prod --key <their key>"
	enough := object.union(r, {"candidate": object.union(r.candidate, {"approvals": object.union(a, {"approved_by": ["alice", "bob"]})})})
	count(lib.release_violations) == 0 with input as with_release(enough)
}

test_release_absent_changes_nothing if {
	prov := attestation(key_signer(key_a), custody_provenance({}))
	cfg := trust_a.custody.config
	without := lib.violations with input as doc([prov]) with data.custody.config as cfg
	count(without) == 0
	# The same input with an admitting release state decides the same; a superseded one adds
	# exactly its own deny.
	ok := release_state({"digest": "sha256:cc", "is_current": true, "release_seq": 7, "releases_behind": 0})
	with_ok := lib.violations with input as object.union(doc([prov]), {"release": ok}) with data.custody.config as cfg
	with_ok == without
	old := release_state({"release_seq": 3, "releases_behind": 4})
	with_old := lib.violations with input as object.union(doc([prov]), {"release": old}) with data.custody.config as cfg
	codes(with_old) == {"release-not-current"}
}
