// Verifies a vouch Sigstore bundle with Sigstore's own JavaScript verifier
// (@sigstore/verify), trusting one public key (PEM) under its key id, as a
// key-based bundle is verified: no certificate, no transparency-log entry,
// no timestamp (thresholds 0).
//
//   node tests/js/verify-bundle.js BUNDLE.json KEY.pem KEY_ID
//
// Prints OK and exits 0, or prints FAIL with Sigstore's reason and exits 1.
"use strict";
const fs = require("fs");
const crypto = require("crypto");
const { bundleFromJSON } = require("@sigstore/bundle");
const { Verifier, toSignedEntity } = require("@sigstore/verify");

const [bundlePath, pemPath, keyId] = process.argv.slice(2);
if (!keyId) {
  console.error("usage: verify-bundle.js BUNDLE.json KEY.pem KEY_ID");
  process.exit(2);
}
const publicKey = crypto.createPublicKey(fs.readFileSync(pemPath, "utf8"));
const trust = {
  certificateAuthorities: [],
  timestampAuthorities: [],
  tlogs: [],
  ctlogs: [],
  publicKey: (hint) => {
    if (hint !== keyId) throw new Error(`no trusted key ${hint}`);
    return { publicKey, validFor: () => true };
  },
};
const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, "utf8")));
  verifier.verify(toSignedEntity(bundle));
  console.log("OK");
} catch (e) {
  console.log(`FAIL ${e.code || ""} ${e.message}`);
  process.exit(1);
}
