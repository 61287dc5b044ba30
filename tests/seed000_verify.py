"""Seed 000's verification snippet, run verbatim on a packet body.

usage: python3 seed000_verify.py BODY_FILE KEYS_FILE_OR_URL

The seed leaves two things to the reader: taking `packet_bytes` ("the exact
bytes of the packet value from the JSON response") and finding `key_entry` in
the well-known keys document. Both are done here as an auditor would; the rest
is the seed's text.
"""
import base64
import hashlib
import json
import sys
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

raw = open(sys.argv[1], "rb").read()
source = sys.argv[2]
if source.startswith("http://") or source.startswith("https://"):
    keys = json.load(urllib.request.urlopen(source))
else:
    keys = json.load(open(source, "rb"))

body = json.loads(raw)
signature = body["signature"]
key_entry = next(k for k in keys["keys"] if k["key_id"] == signature["key_id"])

# The exact bytes of the "packet" value, sliced from the body...
start = raw.index(b'"packet":') + len(b'"packet":')
end = raw.index(b',"signature":')
packet_bytes = raw[start:end]
# ...are also what re-canonicalizing the parsed packet gives.
assert packet_bytes == json.dumps(
    body["packet"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
).encode(), "packet bytes are not canonical"

# --- seed 000, verbatim ---
# packet_bytes: the exact bytes of the "packet" value from the JSON response.
# Use the canonical_sha256 as a cross-check before verifying the signature.
canonical_sha256 = hashlib.sha256(packet_bytes).hexdigest()
assert canonical_sha256 == signature["canonical_sha256"]
pub_key = Ed25519PublicKey.from_public_bytes(
    base64.b64decode(key_entry["public_key"])
)
pub_key.verify(
    base64.b64decode(signature["value"]),
    packet_bytes,
)
# Raises InvalidSignature if verification fails.
print("Packet is authentic")
