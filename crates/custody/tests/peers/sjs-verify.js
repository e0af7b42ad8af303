// Offline verification of a Sigstore bundle with sigstore-js (@sigstore/verify), like
// ../shared/peers/sjs-verify.js, plus `--timestamp-threshold N`: the shared script keeps
// sigstore-js's default of one verified timestamp, which a key-signed bundle without a log entry
// or TSA timestamp can never have (sigstore-js counts only log integrated times and RFC 3161
// timestamps). Everything else sigstore-js checks is unchanged.
// usage: NODE_PATH=PREFIX/npm/node_modules node sjs-verify.js --bundle B --trusted-root TR \
//          (--key PUB.pem | --identity SAN --issuer ISS) [--tlog-threshold N] [--timestamp-threshold N] ARTIFACT
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
const { TrustedRoot } = require('@sigstore/protobuf-specs');

const argv = process.argv.slice(2);
const opt = (flag) => { const i = argv.indexOf(flag); return i >= 0 ? argv[i + 1] : undefined; };
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(opt('--bundle'), 'utf8')));
  const trust = toTrustMaterial(TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(opt('--trusted-root'), 'utf8'))));
  const keyPath = opt('--key');
  if (keyPath) {
    const publicKey = crypto.createPublicKey(fs.readFileSync(keyPath));
    trust.publicKey = () => ({ publicKey, validFor: () => true });
  }
  const options = {};
  if (opt('--tlog-threshold') !== undefined) options.tlogThreshold = Number(opt('--tlog-threshold'));
  if (opt('--timestamp-threshold') !== undefined) options.timestampThreshold = Number(opt('--timestamp-threshold'));
  if (keyPath) { options.ctlogThreshold = 0; }
  const verifier = new Verifier(trust, options);
  const entity = toSignedEntity(bundle, fs.readFileSync(argv[argv.length - 1]));
  const policy = keyPath ? undefined : { subjectAlternativeName: opt('--identity'), extensions: { issuer: opt('--issuer') } };
  verifier.verify(entity, policy);
  console.log('OK');
} catch (e) {
  console.log('FAIL', e.code || '', e.message);
  process.exit(1);
}
