-- The archived records are stored compressed: canonical JSON repeats its
-- keys once per service, run and event, and gzip takes the demo
-- organization's SOC 2 records from 24 KB to 2 KB (server/README.md has the
-- figures). `encoding` says how `records` holds the canonical bytes:
-- 'identity' (the text itself, as 0007 wrote it) or 'gzip' (base64 of the
-- gzip stream, as the PDFs are kept: one schema for both databases).
ALTER TABLE report_records ADD COLUMN encoding TEXT NOT NULL DEFAULT 'identity';
