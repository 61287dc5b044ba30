-- The transparency log (RFC 6962): one leaf per complete packet and per
-- signing-key event, appended in the transaction that stores what it records.
-- `entry` is the leaf: the entry's canonical JSON (digests and ids only, so
-- the log can be public). `subject` names what the entry records
-- ('packet:REPORT', 'key:KEY:EVENT'), so nothing is logged twice.
-- `root_hash` is the root of the tree of leaf_index + 1 leaves, so a
-- checkpoint of any size the log ever had can be signed again.
-- Hashes are lowercase hex.
CREATE TABLE log_leaves (
    leaf_index BIGINT PRIMARY KEY,
    subject TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL,
    leaf_hash TEXT NOT NULL,
    root_hash TEXT NOT NULL,
    logged_at BIGINT NOT NULL
);
-- The hash of every complete aligned subtree: node (level, node_index)
-- covers leaves [node_index * 2^level, (node_index + 1) * 2^level). A proof
-- reads O(log n) of them.
CREATE TABLE log_nodes (
    level BIGINT NOT NULL,
    node_index BIGINT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (level, node_index)
);
-- The log's identity, shared by every server on the database: its origin and
-- the public half of the key that signs its checkpoints. A server configured
-- with another key refuses to start.
CREATE TABLE log_identity (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    origin TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- With VOUCH_TSA_URL, the RFC 3161 time-stamp response of each packet's
-- signature (base64 of its DER) and the authority's time in it.
CREATE TABLE report_timestamps (
    report_id TEXT PRIMARY KEY REFERENCES reports (report_id),
    response TEXT NOT NULL,
    authority_time BIGINT NOT NULL
);
-- A revocation may name when the key was compromised: the key's packets
-- logged before that instant stay valid.
ALTER TABLE signing_keys ADD COLUMN compromised_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN revocation_reason TEXT;
