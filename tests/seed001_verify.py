"""Seed 001's HMAC verification snippet, run verbatim on a legacy report body.

usage: python3 seed001_verify.py BODY_FILE KEY_FILE

The key file holds the verification key as text; the key is those bytes with
surrounding whitespace trimmed (what an auditor is handed). The rest is the
seed's text; it exits non-zero on a mismatch.
"""
import hashlib
import hmac
import json
import sys

response_bytes = open(sys.argv[1], "rb").read()
verification_key = open(sys.argv[2], "rb").read().strip()
actual = json.loads(response_bytes)["signature"]["value"]

# --- seed 001, verbatim ---
# The raw HTTP response body as bytes (do not parse and re-serialize).
raw = response_bytes

# Extract the exact bytes of the report object: everything between
# the "report": marker and the trailing ,"signature" marker.
start = raw.index(b'"report":') + len(b'"report":')
end = raw.index(b',"signature"')
report_bytes = raw[start:end]

expected = hmac.new(verification_key, report_bytes, hashlib.sha256).hexdigest()

if hmac.compare_digest(expected, actual):
    print("Signature valid")
else:
    print("Signature mismatch")
    sys.exit(1)
