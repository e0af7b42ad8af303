// sigstore-js (@sigstore/verify) in-process verification timing (median of RUNS), offline.
// usage: NODE_PATH=.peers/npm/node_modules node bench/sjs_inprocess.js CASE TRUSTED_ROOT [RUNS]
// Each run parses the bundle JSON and calls Verifier.verify (trust material built once), for the
// conformance artifact a.txt and identity.
const fs = require('fs');
const path = require('path');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
const { TrustedRoot } = require('@sigstore/protobuf-specs');

const [caseName, rootPath, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 200);
const dir = path.join(__dirname, '../../shared/testdata/sigstore-conformance/bundle-verify');
const bundleText = fs.readFileSync(path.join(dir, caseName, 'bundle.sigstore.json'), 'utf8');
const artifact = fs.readFileSync(path.join(dir, 'a.txt'));
const trust = toTrustMaterial(TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath, 'utf8'))));
const verifier = new Verifier(trust);
const policy = {
  subjectAlternativeName: 'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main',
  extensions: { issuer: 'https://token.actions.githubusercontent.com' },
};
const once = () => verifier.verify(toSignedEntity(bundleFromJSON(JSON.parse(bundleText)), artifact), policy);
for (let i = 0; i < Math.max(10, runs / 10); i++) once();
const times = [];
for (let i = 0; i < runs; i++) {
  const t = process.hrtime.bigint();
  once();
  times.push(Number(process.hrtime.bigint() - t) / 1e3);
}
times.sort((a, b) => a - b);
const pick = (p) => times[Math.floor((times.length - 1) * p)];
console.log(`${caseName.padEnd(22)} median ${pick(0.5).toFixed(1).padStart(8)} µs  p10 ${pick(0.1).toFixed(1).padStart(8)} µs  p90 ${pick(0.9).toFixed(1).padStart(8)} µs  (${runs} runs)`);
