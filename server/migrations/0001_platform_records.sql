-- The platform's records, as vouch holds them. One schema for SQLite and
-- PostgreSQL through sqlx's Any driver: TEXT and BIGINT only. Timestamps are
-- Unix seconds (UTC); flags are 0/1 (the Any driver cannot decode SQLite's
-- BOOLEAN); lists are JSON arrays in TEXT.

CREATE TABLE platform (
    id BIGINT PRIMARY KEY,
    processor_name TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    address TEXT,
    dpo_email TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    billing_email TEXT NOT NULL,
    privacy_contact_email TEXT,
    audit_retention_days BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    mfa_enabled BIGINT NOT NULL CHECK (mfa_enabled IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    username TEXT NOT NULL REFERENCES users (username),
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, username)
);
CREATE INDEX memberships_user ON memberships (username);

CREATE TABLE services (
    service_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    database_type TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    zones TEXT NOT NULL,
    storage_region TEXT NOT NULL,
    storage_encrypted BIGINT NOT NULL CHECK (storage_encrypted IN (0, 1)),
    backup_encryption_enabled BIGINT NOT NULL CHECK (backup_encryption_enabled IN (0, 1)),
    tls_enabled BIGINT NOT NULL CHECK (tls_enabled IN (0, 1)),
    auth_required BIGINT CHECK (auth_required IN (0, 1)),
    high_risk_ai BIGINT CHECK (high_risk_ai IN (0, 1)),
    ict_function TEXT,
    data_categories TEXT,
    processing_purposes TEXT,
    backup_schedule_enabled BIGINT NOT NULL CHECK (backup_schedule_enabled IN (0, 1)),
    backup_schedule_cron TEXT,
    backup_retention_days BIGINT,
    backup_encryption_algorithm TEXT,
    backup_storage_zone TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX services_org ON services (organization_id, service_id);

CREATE TABLE backup_runs (
    run_id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services (service_id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    started_at BIGINT NOT NULL,
    completed_at BIGINT,
    status TEXT NOT NULL,
    backup_type TEXT NOT NULL
);
CREATE INDEX backup_runs_org_started ON backup_runs (organization_id, started_at);
CREATE INDEX backup_runs_org_completed ON backup_runs (organization_id, status, completed_at);

CREATE TABLE restore_tests (
    test_id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services (service_id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    performed_at BIGINT NOT NULL,
    succeeded BIGINT NOT NULL CHECK (succeeded IN (0, 1))
);
CREATE INDEX restore_tests_org_performed ON restore_tests (organization_id, performed_at);

CREATE TABLE audit_entries (
    entry_id TEXT PRIMARY KEY,
    organization_id TEXT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    remote_addr TEXT
);
CREATE INDEX audit_entries_org_at ON audit_entries (organization_id, at);
