-- Time-boxed, read-only access of an outside auditor (a user who is not a
-- member) to one organization's packets of one framework, optionally of one
-- period range. A grant is in force from its creation until `expires_at`
-- or `revoked_at`; after either, the auditor's requests are answered as if
-- the organization had nothing to show them (404, the bytes of any missing
-- resource).
CREATE TABLE auditor_grants (
    grant_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    username TEXT NOT NULL REFERENCES users (username),
    framework TEXT NOT NULL,
    -- Packets whose period lies within [period_start, period_end]; NULL: unbounded.
    period_start BIGINT,
    period_end BIGINT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX auditor_grants_reader ON auditor_grants (organization_id, username);
