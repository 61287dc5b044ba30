-- Signed webhooks (Standard Webhooks): endpoints an organization's owners
-- and admins register, the events, and one delivery per event and endpoint.

-- `secret` is the endpoint's signing secret (`whsec_` and base64), shown to
-- its creator once; the server keeps it to sign every delivery.
-- `event_types` is a JSON array of the event types the endpoint receives.
CREATE TABLE webhook_endpoints (
    endpoint_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    event_types TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (organization_id);

-- An event, written in the transaction of what it reports; `event_id` is
-- the `webhook-id` of every delivery of it, so that a receiver can tell a
-- retry from a new event. `organization_id` is NULL for the platform's own
-- events (a signing key rotated or revoked), which every organization's
-- endpoints that ask for them receive.
CREATE TABLE webhook_events (
    event_id TEXT PRIMARY KEY,
    organization_id TEXT REFERENCES organizations (id),
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One delivery per event and endpoint, written with the event. `state`:
-- 'pending' (waiting for `next_attempt_at`, or taken by a server until
-- `lease_until`), 'delivered' (a 2xx answered; never sent again) or 'failed'
-- (out of attempts). Attempts back off on the server's clock.
CREATE TABLE webhook_deliveries (
    event_id TEXT NOT NULL REFERENCES webhook_events (event_id),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    worker TEXT,
    last_status BIGINT,
    last_error TEXT,
    delivered_at BIGINT,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
