-- Continuous compliance: the hash-linked series of packets, and schedules.

-- The end of each organization's series of packets of a framework: the
-- canonical_sha256 of its last complete packet, which the next packet names
-- inside its signed bytes (`series.previous_canonical_sha256`). A generation
-- moves it in the transaction that stores the packet, guarded by the value
-- it signed over: of two concurrent generations one stores, the other signs
-- again over the new end (service::generate). Without a row the end is the
-- series' latest report from before this table, if any (store::series).
CREATE TABLE series_heads (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    framework TEXT NOT NULL,
    canonical_sha256 TEXT NOT NULL,
    -- Its report, stored in the same transaction (after this row moves).
    report_id TEXT NOT NULL,
    PRIMARY KEY (organization_id, framework)
);

-- What each packet names as the one before it; the unique index refuses a
-- fork (two packets after the same one) whatever a server does.
ALTER TABLE reports ADD COLUMN previous_sha256 TEXT;
CREATE UNIQUE INDEX reports_series_link ON reports (organization_id, framework, previous_sha256);

-- Who asked for a report: 'on_demand' (a member's request) or 'scheduled'.
ALTER TABLE reports ADD COLUMN trigger_kind TEXT NOT NULL DEFAULT 'on_demand'
    CHECK (trigger_kind IN ('on_demand', 'scheduled'));

-- Until when the packet says its evidence holds (`valid_until`), for the
-- listing's and the dashboard's freshness.
ALTER TABLE reports ADD COLUMN valid_until BIGINT;

-- How often an organization's subscriptions produce packets by themselves:
-- 'monthly' (calendar months, UTC) or 'weekly' (weeks from Monday 00:00,
-- UTC), for periods ending after `since` (the last change). No row: monthly.
CREATE TABLE schedules (
    organization_id TEXT PRIMARY KEY REFERENCES organizations (id),
    cadence TEXT NOT NULL CHECK (cadence IN ('monthly', 'weekly')),
    since BIGINT NOT NULL
);

-- A paused subscription is not scheduled; resuming sets `scheduled_from`, so
-- the periods that ended while it was paused stay ungenerated (the series
-- shows the gap). `schedule_holder` and `schedule_lease_until` are the
-- claim of the server generating the subscription's due packets: one at a
-- time, in period order; a claim whose lease passed (its server died) is
-- taken over.
ALTER TABLE subscriptions ADD COLUMN paused_at BIGINT;
ALTER TABLE subscriptions ADD COLUMN scheduled_from BIGINT;
ALTER TABLE subscriptions ADD COLUMN schedule_holder TEXT;
ALTER TABLE subscriptions ADD COLUMN schedule_lease_until BIGINT;

-- One row per scheduled period: 'done' with its report, written in the
-- transaction that stores the packet (the key refuses a second packet for
-- the period), or 'failed' with the attempts so far and when to try again.
CREATE TABLE scheduled_runs (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    framework TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('done', 'failed')),
    report_id TEXT,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (organization_id, framework, period_start, period_end)
);
