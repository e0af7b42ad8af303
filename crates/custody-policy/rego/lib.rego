# custody's built-in policy library: data.custody.lib
#
# Everything here reads `input` as documented in docs/policy-input.md: the evidence in
# input.evidence has already passed signature (and, where a trusted root was given, log)
# verification; policy decides *whose* evidence counts and what it must say.
#
# Two ways to use it:
#   1. Declarative: put settings in data.custody.config (a data.json beside your policy) and
#      write `deny contains v if some v in data.custody.lib.violations`.
#      (Refer to the library by its full path: with regorus, `import data.custody.lib` then
#      `lib.x` evaluates the whole package on every evaluation, ~10x slower.)
#   2. As functions: lib.signed_by_keys(keys, k), lib.provenance_from_builder(patterns), ...
package custody.lib

slsa_provenance_v1 := "https://slsa.dev/provenance/v1"

custody_rebuild_v1 := "urn:custody:predicate:rebuild:v1"

approval_v1 := "https://custody.dev/approval/v1"

vsa_v1 := "https://slsa.dev/verification_summary/v1"

# ---------------------------------------------------------------------------------------------
# Configuration: defaults < data.custody.config < data.custody.config.stages[<stage>]

default_config := {
	"signers": {"keys": [], "identities": [], "threshold": 1},
	"provenance": {
		"required": true,
		"builders": [],
		"repositories": [],
		"refs": [],
		"clean": false,
		"hermetic": false,
		"pinned": false,
		"max_age_days": 0,
	},
	"reproducible": false,
	"tlog": false,
	"required_attestations": [],
	"algorithms": ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-pss-sha256", "rsa-pkcs1-sha256"],
	"min_rsa_bits": 2048,
	"deny_rejected": false,
}

# (Never `object.get(data, ...)`: reading all of `data` evaluates every rule of every package.)
default user_config := {}

user_config := data.custody.config

default stage := ""

stage := s if {
	s := input.environment.stage
	is_string(s)
}

stage_config := object.get(user_config, ["stages", stage], {})

merged_config := object.union(object.union(default_config, user_config), stage_config)

# custody resolves the configuration of every stage once, when it loads the policy, into
# data.custody.resolved (a per-evaluation deep merge costs more than the rest of the policy);
# it is used only if it was computed from this very data (tests override data.custody.config).
# The resolved form also carries lookup sets (compiled_config), so rules test membership
# instead of scanning and lower-casing lists on every evaluation.
# (Every value assigned in a body of this rule is always defined: regorus's VM, unlike its
# interpreter, does not fall through to `else` when a complete rule's `x := <undefined>` fails.)
config := c if {
	data.custody.resolved.source == data.custody.config
	c := object.get(data.custody.resolved.stages, [object.get(input, ["environment", "stage"], "")], data.custody.resolved.base)
} else := compiled_config(merged_config)

# A merged configuration plus what rules look up in it: trusted key ids (lower case), allowed
# algorithms, and whether any identity is trusted. (Names start with `_`: not settings.)
compiled_config(c) := object.union(c, {
	"_keys": {lower(k) | some k in c.signers.keys},
	"_algorithms": {a | some a in c.algorithms},
	"_fixed_size_algorithms": {a | some a in c.algorithms; not startswith(a, "rsa")},
	"_identities": count(c.signers.identities) > 0,
	"_source_checks": count(c.provenance.builders) + count(c.provenance.repositories) + count(c.provenance.refs) > 0,
	"_build_checks": any_true([c.provenance.hermetic, c.provenance.pinned]),
	"_evidence_checks": any_true([c.reproducible, c.tlog, count(c.required_attestations) > 0, c.deny_rejected]),
})

# True when any of `xs` is on the way a rule body reads a setting (anything but false).
any_true(xs) := count([x | some x in xs; x != false]) > 0

# What custody stores in data.custody.resolved for the base and for every stage.
compiled_merged_config := compiled_config(merged_config)

# ---------------------------------------------------------------------------------------------
# Signers

# A printable name for a verified signer: the key id, or "identity (issuer)" (custody fills
# signer.label when it builds the input).
signer_label(s) := s.label

# True when `s` (a verified signer) is one of `keys` (hex key ids).
key_listed(s, keys) if {
	s.kind == "key"
	some k in keys
	lower(k) == s.key_id
}

# True when a certificate signer matches `want`: {"identity" | "identity_regexp", "issuer" | "issuer_regexp"}.
identity_matches(s, want) if {
	s.kind == "certificate"
	field_matches(want, "identity", s.identity)
	field_matches(want, "issuer", s.issuer)
}

field_matches(want, field, value) if want[field] == value

field_matches(want, field, value) if {
	re := want[sprintf("%s_regexp", [field])]
	regex.match(sprintf("^(?:%s)$", [re]), value)
}

# True when a verified signer is trusted by `signers` ({"keys": [...], "identities": [...]}).
signer_trusted(s, signers) if key_listed(s, object.get(signers, "keys", []))

signer_trusted(s, signers) if {
	some want in object.get(signers, "identities", [])
	identity_matches(s, want)
}

# Distinct trusted signers over all verified evidence.
trusted_signers(signers) := {signer_label(e.signer) |
	some e in input.evidence
	signer_trusted(e.signer, signers)
}

# k of n: at least `k` distinct signers among `keys` signed something about this artifact.
signed_by_keys(key_ids, threshold) := count(trusted_signers({"keys": key_ids})) >= threshold

# k of n: at least `k` distinct certificate identities matching `identities`.
signed_by_identities(identities, threshold) := count(trusted_signers({"identities": identities})) >= threshold

# Evidence by a trusted signer (config.signers): key-signed evidence first, then
# certificate-signed evidence (only scanned when some identity is trusted).

trusted_evidence := array.concat(
	[e | some e in input.evidence; e.signer.kind == "key"; e.signer.key_id in config._keys],
	[e |
		some e in input.evidence
		e.signer.kind == "certificate"
		some want in config.signers.identities
		identity_matches(e.signer, want)
	],
) if {
	config._identities
} else := [e | some e in input.evidence; e.signer.kind == "key"; e.signer.key_id in config._keys]

# ---------------------------------------------------------------------------------------------
# Attestations and provenance

# Verified attestations of one predicate type, by trusted signers.
attestations(predicate_type) := [e |
	some e in trusted_evidence
	e.kind == "attestation"
	e.predicate_type == predicate_type
]

# (The predicate type is spelled out: a reference to slsa_provenance_v1 costs a rule call.)
provenance := [e | some e in trusted_evidence; e.predicate_type == "https://slsa.dev/provenance/v1"; e.kind == "attestation"]

# Distinct trusted signers (config.signers) of anything about the artifact.
trusted_signer_labels := {e.signer.label | some e in trusted_evidence}

builder_id(st) := st.predicate.runDetails.builder.id

# The source repository a provenance names: custody's externalParameters.source, GitHub's
# externalParameters.workflow, else the first resolved dependency (git+URL@ref).
source_repository(st) := r if {
	r := st.predicate.buildDefinition.externalParameters.source.repository
	is_string(r)
} else := r if {
	r := st.predicate.buildDefinition.externalParameters.workflow.repository
	is_string(r)
} else := r if {
	uri := st.predicate.buildDefinition.resolvedDependencies[0].uri
	r := trim_prefix(split(uri, "@")[0], "git+")
}

source_ref(st) := r if {
	r := st.predicate.buildDefinition.externalParameters.source.ref
	is_string(r)
} else := r if {
	r := st.predicate.buildDefinition.externalParameters.workflow.ref
	is_string(r)
} else := r if {
	uri := st.predicate.buildDefinition.resolvedDependencies[0].uri
	parts := split(uri, "@")
	count(parts) > 1
	r := parts[count(parts) - 1]
}

# A glob (`*` matches anything, `/` included) or exact match against any pattern.
# (Exact and trailing-`*` patterns are compared directly: glob.match compiles its pattern.)
matches_any(value, patterns) if value in patterns

matches_any(value, patterns) if {
	some p in patterns
	endswith(p, "*")
	not contains(trim_suffix(p, "*"), "*")
	startswith(value, trim_suffix(p, "*"))
}

matches_any(value, patterns) if {
	some p in patterns
	contains(trim_suffix(p, "*"), "*")
	glob.match(p, null, value)
}

provenance_from_builder(patterns) if {
	some e in provenance
	matches_any(builder_id(e.statement), patterns)
}

provenance_from_source(repositories, refs) if {
	some e in provenance
	matches_any(source_repository(e.statement), repositories)
	matches_any(source_ref(e.statement), refs)
}

# Built from a clean work tree: custody records externalParameters.source.dirty.
clean_tree(st) if st.predicate.buildDefinition.externalParameters.source.dirty == false

# Built with no network: custody records externalParameters.hermetic.
hermetic(st) if st.predicate.buildDefinition.externalParameters.hermetic == true

# Pinning findings custody build recorded (unpinned base images, actions, `latest` tags,
# lockfiles without integrity): 0 when the build had none.
unpinned_count(st) := n if {
	n := st.predicate.buildDefinition.internalParameters.pinning.findings
	is_number(n)
}

# Days between the build's finish (or start) and input.time.
age_days(st) := (now_ns - time.parse_rfc3339_ns(build_time(st))) / 86400000000000

build_time(st) := t if {
	t := st.predicate.runDetails.metadata.finishedOn
	is_string(t)
} else := t if {
	t := st.predicate.runDetails.metadata.startedOn
	is_string(t)
}

now_ns := time.parse_rfc3339_ns(input.time)

# An independent rebuild (custody rebuild) reproduced the artifact: a trusted rebuild
# attestation that says this very artifact came out the same (rebuild_matches), signed by
# someone who did not sign its provenance (rebuild_ties empty). A rebuild that DIFFERS, or one
# by the builder itself, never counts.
reproduced if {
	some e in attestations(custody_rebuild_v1)
	rebuild_matches(e)
	count(rebuild_ties(e)) == 0
}

# The rebuild attestation's entries (predicate.subjects) for input.artifact.digest.
rebuild_entries(e) := [s |
	some s in object.get(e.statement.predicate, "subjects", [])
	r := object.get(s, "recorded", null)
	is_string(r)
	lower(r) == lower(trim_prefix(input.artifact.digest, "sha256:"))
]

# True when a rebuild attestation says this artifact was reproduced: the overall result is
# "match" and it has an entry for the artifact's digest, every one with match true and the
# rebuilt digest equal to the recorded one. Anything else (a "mismatch", an entry that
# DIFFERS, no entry for this artifact) is not a reproduction.
rebuild_matches(e) if {
	e.statement.predicate.result == "match"
	entries := rebuild_entries(e)
	count(entries) > 0
	every s in entries {
		s.match == true
		s.rebuilt == s.recorded
	}
}

# Verified provenance for the artifact, whoever signed it (trusted or not: a rebuild by anyone
# who signed a provenance of it is not independent).
provenance_evidence := [e | some e in input.evidence; e.predicate_type in provenance_types]

# Why a rebuild `r` is not independent of the build: each way its signer is the provenance's
# signer or builder ("key …", "identity …", "principal …", "CI workflow …"). Empty when independent.
rebuild_ties(r) := {tie |
	some p in provenance_evidence
	some tie in signer_ties(r.signer, p)
}

# (Every field is read with object.get: a field missing from one signer must not make the
# whole comparison undefined, which would read as "independent".)
signer_ties(s, p) := {tie |
	mine_uri := object.get(s, ["claims", "build_signer_uri"], null)
	some pair in [
		[object.get(s, "key_id", null), object.get(p, ["signer", "key_id"], null), "key"],
		[object.get(s, "identity", null), object.get(p, ["signer", "identity"], null), "identity"],
		[object.get(s, "principal", null), object.get(p, ["signer", "principal"], null), "principal"],
		[mine_uri, object.get(p, ["signer", "claims", "build_signer_uri"], null), "CI workflow"],
		[mine_uri, object.get(p, ["statement", "predicate", "runDetails", "builder", "id"], null), "builder"],
	]
	is_string(pair[0])
	is_string(pair[1])
	lower(pair[0]) == lower(pair[1])
	tie := sprintf("%s %s", [pair[2], pair[0]])
}

algorithm_allowed(s) if {
	config._algorithms[s.algorithm]
	not rsa_too_small(s)
}

rsa_too_small(s) if {
	startswith(s.algorithm, "rsa")
	s.key_bits < config.min_rsa_bits
}

# ---------------------------------------------------------------------------------------------
# Violations from config: each {code, msg, fix[, signer, evidence]}
#
# Checks that most configurations leave off are grouped behind one switch each, resolved per
# stage (compiled_config): a check that is off then costs nothing per evaluation, where a rule
# body of its own would cost a rule call (a few microseconds for a dozen of them).

violations contains v if {
	config._source_checks
	some v in source_violations
}

violations contains v if {
	config._build_checks
	some v in build_violations
}

violations contains v if {
	config._evidence_checks
	some v in evidence_violations
}

violations contains v if {
	have := count(trusted_signer_labels)
	have < config.signers.threshold
	v := {
		"code": "signers-below-threshold",
		"msg": sprintf("%d trusted signer(s) signed this artifact; %d required (verified signers: %v)", [have, config.signers.threshold, all_signers]),
		"fix": "sign with a key listed in data.custody.config.signers.keys (custody sign/attest --key), or list the signer's key id or identity there",
	}
}

# Trusted evidence whose signature algorithm (or RSA key size) config does not allow. Most
# inputs use only allowed non-RSA algorithms: one set difference says so.
disallowed_algorithm_evidence := [] if {
	count({e.signer.algorithm | some e in trusted_evidence} - config._fixed_size_algorithms) == 0
} else := [e | some e in trusted_evidence; not algorithm_allowed(e.signer)]

all_signers := sort([signer_label(e.signer) | some e in input.evidence])

violations contains v if {
	some e in disallowed_algorithm_evidence
	v := {
		"code": "signer-algorithm",
		"msg": sprintf("%s signed with %s (%d bits), not allowed (allowed: %v, RSA at least %d bits)", [e.source, e.signer.algorithm, e.signer.key_bits, config.algorithms, config.min_rsa_bits]),
		"fix": "re-sign with an allowed algorithm (custody key generate --algorithm ecdsa-p256)",
		"signer": signer_label(e.signer),
		"evidence": e.source,
	}
}

violations contains v if {
	config.provenance.required
	count(provenance) == 0
	v := {
		"code": "provenance-missing",
		"msg": sprintf("no verified SLSA provenance (%s) signed by a trusted signer", [slsa_provenance_v1]),
		"fix": "build with `custody build --artifacts ... -- CMD` (it signs provenance) and pass its .intoto.sigstore.json as evidence",
	}
}

source_violations contains v if {
	count(config.provenance.builders) > 0
	count(provenance) > 0
	not provenance_from_builder(config.provenance.builders)
	v := {
		"code": "provenance-builder",
		"msg": sprintf("built by %v, not an allowed builder %v", [[builder_id(e.statement) | some e in provenance], config.provenance.builders]),
		"fix": "build on an allowed builder, or add its builder.id to data.custody.config.provenance.builders",
	}
}

source_violations contains v if {
	count(config.provenance.repositories) > 0
	count(provenance) > 0
	not any_provenance_repository
	v := {
		"code": "provenance-repository",
		"msg": sprintf("built from %v, not an allowed repository %v", [[source_repository(e.statement) | some e in provenance], config.provenance.repositories]),
		"fix": "build from an allowed repository, or add it to data.custody.config.provenance.repositories",
	}
}

any_provenance_repository if {
	some e in provenance
	matches_any(source_repository(e.statement), config.provenance.repositories)
}

source_violations contains v if {
	count(config.provenance.refs) > 0
	count(provenance) > 0
	not any_provenance_ref
	v := {
		"code": "provenance-ref",
		"msg": sprintf("built from ref %v, not an allowed branch or tag %v", [[source_ref(e.statement) | some e in provenance], config.provenance.refs]),
		"fix": "build from an allowed branch or tag (e.g. tag a release), or add the pattern to data.custody.config.provenance.refs",
	}
}

any_provenance_ref if {
	some e in provenance
	matches_any(source_ref(e.statement), config.provenance.refs)
}

violations contains v if {
	config.provenance.clean
	some e in provenance
	not e.statement.predicate.buildDefinition.externalParameters.source.dirty == false # clean_tree
	v := {
		"code": "provenance-dirty",
		"msg": sprintf("%s records a build from a work tree with uncommitted changes (or none recorded)", [e.source]),
		"fix": "commit or stash every change and build again from a clean checkout",
		"signer": signer_label(e.signer),
		"evidence": e.source,
	}
}

build_violations contains v if {
	config.provenance.hermetic
	some e in provenance
	not hermetic(e.statement)
	v := {
		"code": "provenance-not-hermetic",
		"msg": sprintf("%s records a build with network access", [e.source]),
		"fix": "build with `custody build --hermetic` (no network; fetch dependencies first)",
		"signer": signer_label(e.signer),
		"evidence": e.source,
	}
}

build_violations contains v if {
	config.provenance.pinned
	some e in provenance
	n := object.get(e.statement.predicate, ["buildDefinition", "internalParameters", "pinning", "findings"], -1)
	n != 0
	v := {
		"code": "provenance-unpinned",
		"msg": sprintf("%s records %v unpinned dependencies (-1: not recorded)", [e.source, n]),
		"fix": "pin every dependency (`custody lint` lists them: base images by digest, actions by commit, lockfiles with hashes) and rebuild",
		"signer": signer_label(e.signer),
		"evidence": e.source,
	}
}

violations contains v if {
	config.provenance.max_age_days > 0
	count(provenance) > 0
	not any_fresh_provenance
	v := {
		"code": "provenance-too-old",
		"msg": sprintf("the newest provenance is older than %d days", [config.provenance.max_age_days]),
		"fix": "rebuild the artifact (builds older than the limit must be refreshed to pick up fixes)",
	}
}

any_fresh_provenance if {
	some e in provenance
	t := build_time(e.statement)
	(now_ns - time.parse_rfc3339_ns(t)) / 86400000000000 <= config.provenance.max_age_days # age_days
}

# Reproducibility (config.reproducible): not-reproducible when no trusted rebuild attestation
# exists; rebuild-differs for each that does not say this artifact came out the same (even
# when another matches: a rebuild that differs means the build is not what it claims or not
# deterministic); rebuild-not-independent for a matching one signed by the builder itself.
evidence_violations contains v if {
	config.reproducible
	not reproduced
	count(attestations(custody_rebuild_v1)) == 0
	v := {
		"code": "not-reproducible",
		"msg": sprintf("%s has no verified rebuild attestation (%s) from a trusted signer", [input.artifact.digest, custody_rebuild_v1]),
		"fix": "have an independent builder rebuild it with `custody rebuild BUNDLE --key THEIR_KEY` and pass its attestation as evidence",
		"artifact": input.artifact.digest,
	}
}

evidence_violations contains v if {
	config.reproducible
	some e in attestations(custody_rebuild_v1)
	not rebuild_matches(e)
	v := {
		"code": "rebuild-differs",
		"msg": sprintf("the rebuild of %s in %s (signed by %s) did not reproduce it: %s", [input.artifact.digest, e.source, signer_label(e.signer), rebuild_outcome(e)]),
		"fix": "a rebuild that differs never counts as reproduced: find what makes the build differ (`custody build --reproduce` lists the differing files), fix it, build again and have it rebuilt",
		"signer": signer_label(e.signer),
		"evidence": e.source,
		"artifact": input.artifact.digest,
	}
}

evidence_violations contains v if {
	config.reproducible
	not reproduced
	some e in attestations(custody_rebuild_v1)
	rebuild_matches(e)
	ties := rebuild_ties(e)
	count(ties) > 0
	v := {
		"code": "rebuild-not-independent",
		"msg": sprintf("the rebuild of %s in %s was signed by %s, which also signed or built its provenance (same %s): a builder cannot vouch for its own build", [input.artifact.digest, e.source, signer_label(e.signer), concat(", ", sort(ties))]),
		"fix": "have an independent builder rebuild it (`custody rebuild BUNDLE --key THEIR_KEY`, on another machine, with a key or identity that did not sign the provenance) and pass that attestation as evidence",
		"signer": signer_label(e.signer),
		"evidence": e.source,
		"artifact": input.artifact.digest,
	}
}

# What a rebuild that does not match says about this artifact.
rebuild_outcome(e) := sprintf("result %v", [object.get(e.statement.predicate, "result", null)]) if {
	object.get(e.statement.predicate, "result", null) != "match"
} else := sprintf("no entry for %s in predicate.subjects", [input.artifact.digest]) if {
	count(rebuild_entries(e)) == 0
} else := sprintf("rebuilt %v where %v was recorded", [[s.rebuilt | some s in rebuild_entries(e)], [s.recorded | some s in rebuild_entries(e)]])

evidence_violations contains v if {
	config.tlog
	some e in trusted_evidence
	not e.logged
	v := {
		"code": "not-logged",
		"msg": sprintf("%s has no inclusion proof verified against a trusted log", [e.source]),
		"fix": "sign with --log URL (custody sign/attest/build) and verify with --trusted-root naming that log",
		"signer": signer_label(e.signer),
		"evidence": e.source,
	}
}

evidence_violations contains v if {
	some t in config.required_attestations
	count(attestations(t)) == 0
	v := {
		"code": "attestation-missing",
		"msg": sprintf("no verified %s attestation from a trusted signer", [t]),
		"fix": sprintf("attest it with `custody attest FILE --type %s --predicate P.json --key K`", [t]),
	}
}

# Revoked evidence has its own finding (evidence-revoked, a deny); evidence signed by a retired
# key is not tampering, only stale, and has its own warning (evidence-key-retired).
evidence_violations contains v if {
	config.deny_rejected
	some r in input.rejected
	r.code != "revoked"
	r.code != "key.retired"
	v := {
		"code": "evidence-rejected",
		"msg": sprintf("%s did not verify [%s]: %s", [r.source, r.code, r.reason]),
		"fix": "remove or replace the evidence that does not verify (it may have been tampered with)",
		"evidence": r.source,
	}
}

# ---------------------------------------------------------------------------------------------
# Release facts: revocations and approvals. On whenever the input carries them (the server
# fills input.artifact.revoked, rejected entries with code "revoked", signer.principal,
# input.environment.approvals and input.promotion); no configuration. Part of `violations`;
# a policy that does not use the rest of the library can take just these:
# `deny contains v if some v in data.custody.lib.release_violations`.

violations contains v if some v in release_violations

release_violations contains v if {
	some r in input.rejected
	r.code == "revoked"
	v := {
		"code": "evidence-revoked",
		"msg": sprintf("%s for %s does not count: %s", [r.source, input.artifact.digest, r.reason]),
		"fix": "rebuild or re-sign it with a key (and on a builder) that is not revoked; if the revocation was a mistake, restore trust by withdrawing it",
		"signer": object.get(r, "signer", null),
		"evidence": r.source,
		"artifact": input.artifact.digest,
	}
}

release_violations contains v if {
	r := input.artifact.revoked
	is_object(r)
	v := {
		"code": "artifact-revoked",
		"msg": sprintf("artifact %s is revoked (revocation #%v: %s)", [input.artifact.digest, r.id, r.reason]),
		"fix": "promote or deploy a different build: roll back to an earlier release, or rebuild from a fixed source",
		"artifact": input.artifact.digest,
	}
}

release_violations contains v if {
	a := input.environment.approvals
	is_object(a)
	counted := approvals_counted(a)
	count(counted) < a.required
	missing := a.required - count(counted)
	not_counted := sort({msg |
		some e in input.evidence
		e.predicate_type == approval_v1
		not approval_principal(e) in counted
		msg := approval_problem(e, a)
	})
	v := {
		"code": "approvals-missing",
		"msg": sprintf("%s has %d of %d approvals needed for environment %s from group %s%s", [input.artifact.digest, count(counted), a.required, input.environment.name, a.group, approvals_explained(sort(counted), not_counted)]),
		"fix": sprintf("ask %d more members of group %s to run: custody approve %s --env %s --key <their key>", [missing, a.group, input.artifact.digest, input.environment.name]),
		"artifact": input.artifact.digest,
		"approvals": {"required": a.required, "group": a.group, "counted": sort(counted), "not_counted": not_counted},
	}
}

# ---------------------------------------------------------------------------------------------
# Admission follows releases: input.release (docs/policy-input.md) is present when the artifact
# is admitted to an environment that has releases (a namespace mapped to it). Always on when it
# is; absent, one check and nothing here applies.

release_violations contains v if {
	is_object(input.release)
	some v in release_state_violations
}

release_state_violations contains v if {
	r := input.release
	is_object(r)
	not release_admitted(r)
	v := {
		"code": "release-not-current",
		"msg": sprintf("%s is not admitted to environment %s: it is %s; %s admits %s", [r.candidate.digest, r.environment, release_position(r), r.environment, release_window(r)]),
		"fix": release_not_current_fix(r),
		"artifact": r.candidate.digest,
		"environment": r.environment,
	}
}

# The current release, or one at most allow_previous releases behind it.
release_admitted(r) if r.candidate.is_current == true

release_admitted(r) if {
	n := r.candidate.releases_behind
	is_number(n)
	n <= r.allow_previous
}

release_position(r) := sprintf("not one of its releases (current: %s)", [current_release_text(r)]) if {
	not is_number(r.candidate.release_seq)
} else := sprintf("release #%v, %v releases behind the current %s", [r.candidate.release_seq, r.candidate.releases_behind, current_release_text(r)]) if {
	is_number(r.candidate.releases_behind)
} else := sprintf("release #%v (current: %s)", [r.candidate.release_seq, current_release_text(r)])

current_release_text(r) := sprintf("release #%v %s", [r.current.seq, r.current.digest]) if {
	is_object(r.current)
} else := "none"

release_window(r) := "only its current release" if {
	r.allow_previous == 0
} else := sprintf("its current release and the %v before it", [r.allow_previous])

release_not_current_fix(r) := sprintf("promote it with `custody promote %s --to %s`, or deploy the current release %s", [r.candidate.digest, r.environment, r.current.digest]) if {
	is_object(r.current)
} else := sprintf("promote it with `custody promote %s --to %s`", [r.candidate.digest, r.environment])

release_state_violations contains v if {
	r := input.release
	q := r.candidate.quarantine
	is_object(q)
	v := {
		"code": "release-quarantined",
		"msg": sprintf("%s is quarantined in environment %s by revocation #%v of %s (%s)", [r.candidate.digest, r.environment, q.revocation_id, q.target, q.reason]),
		"fix": sprintf("roll back to a release that verifies (`custody rollback %s --reason ...`), or promote a rebuild that does not depend on %s", [r.environment, q.target]),
		"artifact": r.candidate.digest,
		"environment": r.environment,
	}
}

release_state_violations contains v if {
	r := input.release
	a := r.candidate.approvals
	is_object(a)
	approved := {p | some p in a.approved_by}
	count(approved) < a.required
	v := {
		"code": "release-unapproved",
		"msg": sprintf("%s has %d of %d approvals environment %s requires from group %s (approved by: %s)", [r.candidate.digest, count(approved), a.required, r.environment, a.group, names_or_none(sort(approved))]),
		"fix": sprintf("ask %d more members of group %s to run: custody approve %s --env %s --key <their key>", [a.required - count(approved), a.group, r.candidate.digest, r.environment]),
		"artifact": r.candidate.digest,
		"environment": r.environment,
	}
}

approvals_explained(counted, not_counted) := sprintf(" (counted: %s; not counted: %s)", [names_or_none(counted), concat("; ", not_counted)]) if {
	count(not_counted) > 0
} else := sprintf(" (counted: %s)", [names_or_none(counted)])

names_or_none(names) := concat(", ", names) if {
	count(names) > 0
} else := "none"

# The principals whose approvals count toward `a` (input.environment.approvals): verified
# approval attestations for this environment, signed by a member of the group who neither
# signed the artifact's provenance (the builder) nor asked for the promotion (the promoter),
# no older than a.max_age_seconds.
approvals_counted(a) := {p |
	some e in input.evidence
	e.predicate_type == approval_v1
	not approval_problem(e, a)
	p := e.signer.principal
}

# Principals who signed verified SLSA provenance for the artifact.
builder_principals contains p if {
	some e in input.evidence
	e.predicate_type in provenance_types
	p := e.signer.principal
	is_string(p)
}

provenance_types := {"https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v0.1"}

approval_principal(e) := p if {
	p := e.signer.principal
	is_string(p)
} else := e.signer.label

approval_environment(e) := x if {
	x := e.statement.predicate.environment
} else := null

# Why an approval does not count toward `a`; undefined when it counts.
approval_problem(e, a) := sprintf("%s: approval is for environment %v, not %s", [approval_principal(e), approval_environment(e), input.environment.name]) if {
	approval_environment(e) != input.environment.name
} else := sprintf("%s: not a known principal", [e.signer.label]) if {
	not is_string(e.signer.principal)
} else := sprintf("%s: not in group %s", [e.signer.principal, a.group]) if {
	not e.signer.principal in a.members
} else := sprintf("%s: is the builder", [e.signer.principal]) if {
	e.signer.principal in builder_principals
} else := sprintf("%s: is the promoter", [e.signer.principal]) if {
	e.signer.principal == input.promotion.requested_by
} else := sprintf("%s: approval time unknown (max age %s)", [e.signer.principal, duration_text(a.max_age_seconds)]) if {
	is_number(a.max_age_seconds)
	not approval_time(e)
} else := sprintf("%s: approval is %s old (max %s)", [e.signer.principal, duration_text(age), duration_text(a.max_age_seconds)]) if {
	is_number(a.max_age_seconds)
	age := approval_age_seconds(e)
	age > a.max_age_seconds
} else := sprintf("%s: approval is dated %s in the future", [e.signer.principal, duration_text(0 - age)]) if {
	is_number(a.max_age_seconds)
	age := approval_age_seconds(e)
	age < -300
}

# When an approval was made: its verified log integration time, else a verified timestamp,
# else the approver's own approvedAt.
approval_time(e) := t if {
	ts := [x | some l in e.tlog; x := l.integrated_time; rfc3339_time(x)]
	count(ts) > 0
	t := ts[0]
} else := t if {
	ts := [x | some f in e.times; x := f.time; rfc3339_time(x)]
	count(ts) > 0
	t := ts[0]
} else := t if {
	t := e.statement.predicate.approvedAt
	rfc3339_time(t)
}

# (Checked before time.parse_rfc3339_ns: a malformed time would make evaluation fail.)
rfc3339_time(t) if {
	is_string(t)
	regex.match(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`, t)
}

approval_age_seconds(e) := floor((time.parse_rfc3339_ns(input.time) - time.parse_rfc3339_ns(approval_time(e))) / 1000000000)

# 604800 -> "7d", 777600 -> "9d", 93600 -> "1d2h", 5400 -> "1h30m", 42 -> "42s".
duration_text(s) := sprintf("%dd", [floor(s / 86400)]) if {
	s >= 86400
	floor((s % 86400) / 3600) == 0
} else := sprintf("%dd%dh", [floor(s / 86400), floor((s % 86400) / 3600)]) if {
	s >= 86400
} else := sprintf("%dh", [floor(s / 3600)]) if {
	s >= 3600
	floor((s % 3600) / 60) == 0
} else := sprintf("%dh%dm", [floor(s / 3600), floor((s % 3600) / 60)]) if {
	s >= 3600
} else := sprintf("%dm", [floor(s / 60)]) if {
	s >= 60
} else := sprintf("%ds", [s])

# ---------------------------------------------------------------------------------------------
# Warnings: findings that do not block. A gate policy reports them with
# `warn contains v if some v in data.custody.lib.warnings` (`custody policy init` writes it).
# Like the release facts, always on when the input carries them.

warnings contains v if some v in release_warnings

# Evidence signed by a retired (rotated-out) key and not logged before the retirement was
# moved to input.rejected with code "key.retired": it simply does not count, so it is no deny
# of its own (the other rules deny if what remains is not enough), but it is worth saying why.
release_warnings contains v if {
	some r in input.rejected
	r.code == "key.retired"
	v := {
		"code": "evidence-key-retired",
		"msg": sprintf("%s for %s does not count: %s", [r.source, input.artifact.digest, r.reason]),
		"fix": retired_fix(r),
		"signer": object.get(r, "signer", null),
		"evidence": r.source,
		"artifact": input.artifact.digest,
	}
}

retired_fix(r) := sprintf("re-sign or re-attest it with the successor key %s (custody sign/attest --key <its private key> --log URL); what the retired key signed and logged before log index %v still counts", [s, r.retirement.cut]) if {
	s := r.retirement.successor
	is_string(s)
} else := sprintf("re-sign or re-attest it with a current key (custody sign/attest --key K --log URL); what the retired key signed and logged before log index %v still counts", [object.get(r, ["retirement", "cut"], "?")])
