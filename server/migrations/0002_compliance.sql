-- Subscriptions, signed reports and the signing-key history.

CREATE TABLE subscriptions (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    framework TEXT NOT NULL,
    subscribed_at BIGINT NOT NULL,
    cancelled_at BIGINT,
    PRIMARY KEY (organization_id, framework)
);

-- Every key that ever signed, shared by every server on the database.
CREATE TABLE signing_keys (
    key_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    retired_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);

-- A report is written once, whole: a complete one with its canonical packet
-- bytes and signature, or a failed one with its reason.
CREATE TABLE reports (
    report_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    framework TEXT NOT NULL,
    schema_version TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    generated_at BIGINT NOT NULL,
    key_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('complete', 'failed')),
    failure_reason TEXT,
    canonical TEXT,
    signature TEXT,
    idempotency_key TEXT,
    request_digest TEXT,
    pdf_available BIGINT NOT NULL DEFAULT 0 CHECK (pdf_available IN (0, 1)),
    created_by TEXT NOT NULL
);
CREATE UNIQUE INDEX reports_idempotency ON reports (organization_id, idempotency_key);
CREATE INDEX reports_org_order ON reports (organization_id, generated_at, report_id);
CREATE INDEX reports_org_framework_order ON reports (organization_id, framework, generated_at, report_id);
