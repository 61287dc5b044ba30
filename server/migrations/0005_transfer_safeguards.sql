-- GDPR Art. 46/49: the safeguard (or derogation) the organization recorded for
-- transfers to a third country, as a JSON object {"US": "SCC (EU) 2021/914 ..."}
-- keyed by ISO 3166-1 alpha-2 country code. NULL: none recorded.
ALTER TABLE organizations ADD COLUMN transfer_safeguards TEXT;
