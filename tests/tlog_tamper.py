#!/usr/bin/env python3
"""Tampers with a vouch SQLite database's transparency log, as an operator
with write access to the database could, for the monitor tests:

    tlog_tamper.py DB rewrite-entry INDEX   change entry INDEX's text only
    tlog_tamper.py DB rewrite INDEX         change entry INDEX and rebuild the tree
    tlog_tamper.py DB drop INDEX            delete entry INDEX, renumber, rebuild

Rebuilding recomputes every leaf hash, node and root with RFC 6962
(tlog_check.py's functions), so the log stays self-consistent: only a
monitor that remembers an earlier checkpoint can tell.
"""
import hashlib
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tlog_check import canonical, leaf_hash, mth  # noqa: E402


def rebuild(db):
    rows = db.execute("SELECT leaf_index, entry FROM log_leaves ORDER BY leaf_index").fetchall()
    leaves = [leaf_hash(e.encode()) for _, e in rows]
    db.execute("DELETE FROM log_nodes")
    for level in range(64):
        width = 1 << level
        if width > len(leaves):
            break
        for i in range(len(leaves) // width):
            h = mth(leaves[i * width : (i + 1) * width])
            db.execute("INSERT INTO log_nodes (level, node_index, hash) VALUES (?, ?, ?)", (level, i, h.hex()))
    for (index, _), leaf in zip(rows, leaves):
        db.execute(
            "UPDATE log_leaves SET leaf_hash = ?, root_hash = ? WHERE leaf_index = ?",
            (leaf.hex(), mth(leaves[: index + 1]).hex(), index),
        )


def rewritten(text):
    """The entry with another digest (never one it had before)."""
    entry = json.loads(text)
    key = "canonical_sha256" if "canonical_sha256" in entry else "public_key"
    entry[key] = hashlib.sha256(entry[key].encode()).hexdigest()
    return canonical(entry).decode()


def main():
    path, mode, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
    db = sqlite3.connect(path, timeout=30)
    (text,) = db.execute("SELECT entry FROM log_leaves WHERE leaf_index = ?", (index,)).fetchone()
    if mode in ("rewrite-entry", "rewrite"):
        db.execute("UPDATE log_leaves SET entry = ? WHERE leaf_index = ?", (rewritten(text), index))
        if mode == "rewrite":
            rebuild(db)
    elif mode == "drop":
        db.execute("DELETE FROM log_leaves WHERE leaf_index = ?", (index,))
        last = db.execute("SELECT MAX(leaf_index) FROM log_leaves").fetchone()[0]
        for i in range(index + 1, last + 1):
            db.execute("UPDATE log_leaves SET leaf_index = ? WHERE leaf_index = ?", (i - 1, i))
        rebuild(db)
    else:
        raise SystemExit(f"unknown mode {mode}")
    db.commit()


if __name__ == "__main__":
    main()
