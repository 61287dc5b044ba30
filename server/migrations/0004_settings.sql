-- Secrets every server on the database shares (the key of the dashboard's
-- CSRF tokens), created once on first start.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
