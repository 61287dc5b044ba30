#!/usr/bin/env python3
"""An outside check of vouch's transparency log, written from RFC 6962 /
RFC 9162 and the C2SP signed-note and checkpoint specifications, sharing no
code with vouch.

    tlog_check.py BASE_URL INCLUSION_JSON

Fetches the log key (keys document), the checkpoint and every entry; then
  1. hashes each entry's canonical bytes as an RFC 6962 leaf and the tree's
     root from all of them, and compares it with the checkpoint's root;
  2. recomputes the inclusion proof's root from its audit path;
  3. verifies the checkpoint's Ed25519 signature and key id with the
     `cryptography` package.
Prints one line per check; exits 1 at the first that fails.
Standard library only, except `cryptography` for Ed25519.
"""
import base64
import hashlib
import json
import sys
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):
    """RFC 6962 §2.1: the Merkle Tree Hash of a list of leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def root_from_path(leaf, index, size, path):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        raise ValueError("index beyond the tree")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("audit path too long")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("audit path too short")
    return r


def open_checkpoint(note, name, raw_key):
    """C2SP signed-note: text, blank line, `— name base64(keyid || sig)`."""
    split = note.rindex("\n\n")
    text, sigs = note[: split + 1], note[split + 2 :]
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x01" + raw_key).digest()[:4]
    key = Ed25519PublicKey.from_public_bytes(raw_key)
    for line in sigs.rstrip("\n").split("\n"):
        dash, signer, blob = line.split(" ")
        assert dash == "\u2014", "signature line must start with an em dash"
        blob = base64.b64decode(blob)
        if signer == name and blob[:4] == key_id:
            key.verify(blob[4:], text.encode())  # raises InvalidSignature
            origin, size, root = text.rstrip("\n").split("\n")[:3]
            return origin, int(size), base64.b64decode(root)
    raise ValueError("no signature by the log key")


def main():
    base, inclusion_file = sys.argv[1].rstrip("/"), sys.argv[2]
    keys = json.loads(get(base + "/.well-known/compliance-signing-keys"))
    log = keys["log"]
    raw_key = base64.b64decode(log["public_key"])
    note = get(base + "/.well-known/vouch-log/checkpoint").decode()
    origin, size, root = open_checkpoint(note, log["origin"], raw_key)
    assert origin == log["origin"], "checkpoint origin is not the log's"
    print(f"ok checkpoint signature: {origin} size {size}")

    leaves, start = [], 0
    while start < size:
        page = json.loads(get(f"{base}/.well-known/vouch-log/entries?start={start}&end={size}"))
        for e in page["entries"]:
            assert e["leaf_index"] == len(leaves), "entries out of order"
            leaves.append(leaf_hash(canonical(e["entry"])))
        if not page["entries"]:
            raise SystemExit("the log served no entries")
        start = len(leaves)
    if mth(leaves[:size]) != root:
        print("FAIL: the entries do not hash to the checkpoint's root")
        return 1
    print(f"ok root recomputed from {size} entries")

    proof = json.load(open(inclusion_file))
    entry_bytes = canonical(proof["entry"])
    leaf = leaf_hash(entry_bytes)
    assert leaf.hex() == proof["leaf_hash"], "leaf hash"
    assert leaf == leaves[proof["leaf_index"]], "the proof's leaf is not the log's"
    _, psize, proot = open_checkpoint(proof["checkpoint"], log["origin"], raw_key)
    assert psize == proof["tree_size"]
    got = root_from_path(leaf, proof["leaf_index"], proof["tree_size"], [bytes.fromhex(h) for h in proof["hashes"]])
    if got != proot or proot != mth(leaves[:psize]):
        print("FAIL: the inclusion proof does not lead to the root")
        return 1
    print(f"ok inclusion of leaf {proof['leaf_index']} in {psize}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
