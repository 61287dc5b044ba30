-- PDF rendering as jobs in the database, one per complete report, written
-- in the transaction that stores the report. A bounded pool of workers on
-- every server sharing the database takes them (on PostgreSQL with
-- FOR UPDATE SKIP LOCKED, so two servers never take the same job); a job
-- survives a restart. `state` is 'queued', 'running', 'done' or 'failed'.
-- `attempts` counts the times a job was taken. `lease_until` (Unix
-- milliseconds) is, while running, when the job is given up as abandoned (its
-- server died) and taken again; while queued after a failure, when it may be
-- tried again. After the last attempt a job stays 'failed', with
-- `last_error`, which the report listing shows.
CREATE TABLE render_jobs (
    report_id TEXT PRIMARY KEY REFERENCES reports (report_id),
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    worker TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    enqueued_at BIGINT NOT NULL
);
CREATE INDEX render_jobs_ready ON render_jobs (state, lease_until, enqueued_at);
-- Reports stored before the queue: rendered ones are done, the others queued.
INSERT INTO render_jobs (report_id, state, attempts, lease_until, enqueued_at)
SELECT report_id, CASE WHEN pdf_available = 1 THEN 'done' ELSE 'queued' END, 0, 0, generated_at * 1000
FROM reports WHERE status = 'complete';
