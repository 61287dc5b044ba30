-- Configuration history: every dated change of a service's configuration
-- and of a membership (role, MFA), as the platform reported it. Each row
-- keeps the change as given (`fields`, JSON, to tell a replay from a
-- conflicting reuse of its id) and the whole configuration after it (`state`,
-- JSON; NULL once the service is deleted or the member removed), so that the
-- configuration at any instant is one indexed lookup, however long the
-- history. Rows are ordered by (at, change_id).

CREATE TABLE service_changes (
    change_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    service_id TEXT NOT NULL REFERENCES services (service_id),
    at BIGINT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('created', 'updated', 'deleted')),
    fields TEXT NOT NULL,
    state TEXT,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX service_changes_service_at ON service_changes (service_id, at, change_id);
CREATE INDEX service_changes_org_at ON service_changes (organization_id, at);

CREATE TABLE member_changes (
    change_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    username TEXT NOT NULL REFERENCES users (username),
    at BIGINT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('added', 'updated', 'removed')),
    fields TEXT NOT NULL,
    state TEXT,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX member_changes_member_at ON member_changes (organization_id, username, at, change_id);
