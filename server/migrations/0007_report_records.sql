-- The records document each complete packet was evaluated on, as the exact
-- canonical bytes whose SHA-256 the packet names (`inputs.records_sha256`),
-- written in the same transaction as the report.
CREATE TABLE report_records (
    report_id TEXT PRIMARY KEY REFERENCES reports (report_id),
    records TEXT NOT NULL
);
