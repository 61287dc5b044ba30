-- The in-toto Statement about each complete packet, in a DSSE envelope
-- signed with the packet's own key at generation (the key may be rotated
-- later; Ed25519 is deterministic, so these are the bytes that key gives):
-- with vouch's predicate, and with compliance-trestle's JSON-signing
-- predicate for `trestle verify`. The Sigstore bundle wraps `envelope`.
CREATE TABLE report_attestations (
    report_id TEXT PRIMARY KEY REFERENCES reports (report_id),
    envelope TEXT NOT NULL,
    trestle_envelope TEXT NOT NULL
);
