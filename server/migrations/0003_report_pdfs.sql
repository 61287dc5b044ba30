-- PDF renditions, written once when rendered (in the background after
-- generation, or on the first request). Base64 in TEXT: one schema for both
-- databases through the Any driver.
CREATE TABLE report_pdfs (
    report_id TEXT PRIMARY KEY REFERENCES reports (report_id),
    pdf_base64 TEXT NOT NULL,
    rendered_at BIGINT NOT NULL
);
