//! The OpenAPI document, generated. Paths, methods, security and the answers
//! every route can give because of what it is (its access, its body, its
//! path parameters) come from the route table ([`super::routes`]); the
//! schemas come from the Rust types that are read and written (schemars);
//! each route's own words and answers are in [`operation`].
//!
//! `server/openapi.json` is this document, committed and served at
//! `/openapi.json`; a test fails when it is stale, and
//! `UPDATE_OPENAPI=1 cargo test -p vouch --lib openapi` rewrites it.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::routes::{Access, Endpoint, Route, ROUTES};
use super::BODY_TIMEOUT;

/// One route's own part of the document.
struct Operation {
    id: &'static str,
    summary: &'static str,
    description: &'static str,
    /// Query and header parameters (path parameters come from the template).
    parameters: Vec<Value>,
    /// The request body's schema.
    body: Option<Value>,
    /// Answers particular to the route: status and response object.
    answers: Vec<(u16, Value)>,
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

/// A response without a body: its headers, the request id among them.
fn headed(description: &str, headers: &[&str]) -> Value {
    let mut h = Map::new();
    h.insert("X-Request-Id".into(), header_ref("X-Request-Id"));
    for name in headers {
        h.insert((*name).into(), header_ref(name));
    }
    json!({ "description": description, "headers": h })
}

/// A response with a body of `media` described by `schema`.
fn answer(description: &str, media: &str, schema: Value, headers: &[&str]) -> Value {
    let mut r = headed(description, headers);
    r["content"] = json!({ media: { "schema": schema } });
    r
}

fn ok_json(description: &str, schema: &str) -> Value {
    answer(description, "application/json", schema_ref(schema), &[])
}

fn error(description: &str) -> Value {
    error_with(description, &[])
}

fn error_with(description: &str, headers: &[&str]) -> Value {
    answer(
        description,
        "application/json",
        schema_ref("Error"),
        headers,
    )
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn header(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "header", "required": false, "description": description, "schema": schema })
}

fn csrf_header() -> Value {
    header(
        "X-Vouch-CSRF",
        "The Compliance page's token. A browser request that changes state (it carries `Origin` or \
         `Sec-Fetch-Site`) is refused (403) without it; API clients send neither mark and need none.",
        json!({ "type": "string", "maxLength": 128 }),
    )
}

fn period_query(which: &str, default: &str) -> Value {
    query(
        which,
        &format!("RFC 3339 (converted to UTC); default {default}."),
        json!({ "type": "string", "format": "date-time", "pattern": vouch_engine::time::READ_PATTERN }),
    )
}

/// The words and answers of each endpoint.
fn operation(e: Endpoint) -> Operation {
    use Endpoint as E;
    let op = |id, summary, description| Operation {
        id,
        summary,
        description,
        parameters: vec![],
        body: None,
        answers: vec![],
    };
    match e {
        E::Healthz => Operation {
            answers: vec![(200, ok_json("The process answers.", "HealthStatus"))],
            ..op("healthz", "Liveness", "")
        },
        E::Readyz => Operation {
            answers: vec![
                (200, ok_json("The database answers.", "HealthStatus")),
                (503, error("The database does not answer.")),
            ],
            ..op("readyz", "Readiness", "")
        },
        E::Metrics => Operation {
            answers: vec![
                (
                    200,
                    answer(
                        "Prometheus text format; requests are labelled by route template (`unmatched` for unknown paths, `OTHER` for unknown methods).",
                        "text/plain",
                        json!({ "type": "string" }),
                        &[],
                    ),
                ),
            ],
            ..op("metrics", "Prometheus metrics", "")
        },
        E::OpenApi => Operation {
            answers: vec![(
                200,
                answer("This document.", "application/json", json!({ "type": "object" }), &[]),
            )],
            ..op("openapi", "This OpenAPI document", "")
        },
        E::SigningKeys => Operation {
            parameters: vec![header(
                "If-None-Match",
                "ETags of a copy held: strong or weak (`W/`), one or a list, or `*`.",
                json!({ "type": "string" }),
            )],
            answers: vec![
                (
                    200,
                    answer(
                        "Every key ever used to sign, current, retired and revoked. The keys URL is not a trust anchor: pin the keys from a source you trust.",
                        "application/json",
                        schema_ref("KeysDocument"),
                        &["ETag", "Cache-Control", "Access-Control-Allow-Origin"],
                    ),
                ),
                (
                    304,
                    headed(
                        "The copy held is current.",
                        &["ETag", "Cache-Control", "Access-Control-Allow-Origin"],
                    ),
                ),
                (500, error("The keys could not be read.")),
            ],
            ..op("signingKeys", "The published signing keys", "")
        },
        E::AdminRecords => Operation {
            body: Some(schema_ref("ImportBatch")),
            answers: vec![
                (200, ok_json("The batch was applied in one transaction; counts are rows written (a replayed batch writes none).", "AppliedBatch")),
                (400, error("The batch is invalid or contradicts what is stored (another organization's id, an event id with other content); the message names the JSONPath. Nothing was written.")),
                (500, error("Internal error; nothing was written.")),
            ],
            ..op("importRecords", "Import platform records", "All or nothing; idempotent by the ids in the batch.")
        },
        E::Records => Operation {
            parameters: vec![
                period_query("period_start", "one calendar month before `period_end`"),
                period_query("period_end", "now"),
            ],
            answers: vec![
                (200, ok_json("The records document packets of this period are evaluated on.", "RecordsDocument")),
                (400, error("A period parameter is invalid.")),
            ],
            ..op("getRecords", "The organization's records document", "")
        },
        E::Subscriptions => Operation {
            answers: vec![(200, ok_json("Every framework with the organization's subscription state.", "SubscriptionList"))],
            ..op("listSubscriptions", "Subscriptions", "")
        },
        E::Subscribe | E::Unsubscribe => Operation {
            parameters: vec![csrf_header()],
            answers: vec![(200, ok_json("The subscription as it now stands.", "Subscription"))],
            ..if e == E::Subscribe {
                op("subscribe", "Subscribe to a framework", "Owners and admins. Subscribing again changes nothing.")
            } else {
                op("unsubscribe", "Cancel a subscription", "Owners and admins. Packets already generated stay.")
            }
        },
        E::Reports => Operation {
            parameters: vec![
                query("framework", "Only this framework's packets.", framework_id()),
                query(
                    "limit",
                    "Records per page.",
                    json!({ "type": "integer", "minimum": 1, "maximum": 200, "default": 50 }),
                ),
                query(
                    "cursor",
                    "`next_cursor` of the previous page; a cursor this server did not give out is a 400.",
                    json!({ "type": "string", "minLength": 1 }),
                ),
            ],
            answers: vec![
                (200, ok_json("A page of records, most recent first; `next_cursor` fetches the next.", "ReportList")),
                (400, error("`limit` or `cursor` is invalid.")),
            ],
            ..op("listReports", "Packet records, most recent first", "")
        },
        E::Generate => Operation {
            parameters: vec![
                header(
                    "Idempotency-Key",
                    "1 to 255 visible ASCII characters (anything else is a 400). The same key with the same body answers the first report again (201, same bytes); with another body, 409. A failed attempt does not hold its key.",
                    json!({ "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]{1,255}$" }),
                ),
                csrf_header(),
            ],
            body: Some(schema_ref("GenerateRequest")),
            answers: vec![
                (
                    201,
                    {
                        let mut a = answer(
                            "The signed packet, stored; `Location` is where it can be downloaded again.",
                            "application/json",
                            schema_ref("SignedPacket"),
                            &["Location"],
                        );
                        let id = json!({ "orgId": "$request.path.orgId", "reportId": "$response.body#/report_id" });
                        a["links"] = json!({
                            "download": { "operationId": "getReport", "parameters": id },
                            "pdf": { "operationId": "getReportPdf", "parameters": id }
                        });
                        a
                    },
                ),
                (400, error("The body, the period or the Idempotency-Key is invalid; the message names the bad value.")),
                (402, error("The organization is not subscribed to the framework.")),
                (409, error("The Idempotency-Key was used with another body.")),
                (500, error("Generation failed; the report is recorded as failed with a generic reason (the cause is in the server's log under the request id).")),
                (503, error("The signing key is not configured or cannot be used.")),
            ],
            ..op("generateReport", "Generate, sign and store a packet", "Members and above. Evaluates the organization's records of the period against the framework, signs the canonical packet with Ed25519 and stores it with its PDF render job (the listing's `pdf_status` follows it).")
        },
        E::Report => Operation {
            answers: vec![
                (200, ok_json("The signed packet, byte for byte as stored.", "SignedPacket")),
                (409, error("The report failed; there is no packet.")),
            ],
            ..op("getReport", "Download a signed packet", "")
        },
        E::ReportPdf => Operation {
            answers: vec![
                (
                    200,
                    answer(
                        "The PDF rendition with the signed packet and its signature attached. Its pages are not what is signed: `vouch verify` checks the attachments.",
                        "application/pdf",
                        json!({ "type": "string", "format": "binary" }),
                        &["Content-Disposition", "X-Vouch-PDF"],
                    ),
                ),
                (409, error("The report failed; there is no packet.")),
                (500, error("Rendering failed (the listing's `pdf_error` says why).")),
                (503, error("Another worker has been rendering this PDF for longer than a request waits; retry after `Retry-After` seconds.")),
            ],
            ..op("getReportPdf", "The PDF rendition of a packet", "")
        },
        E::ReportRecords => Operation {
            answers: vec![
                (200, ok_json("The records document the packet was evaluated on: the exact canonical bytes whose SHA-256 is the packet's `inputs.records_sha256` (`vouch reproduce PACKET --records FILE` re-performs the packet from them).", "RecordsDocument")),
                (409, error("The report failed; there is no packet.")),
            ],
            ..op("getReportRecords", "The records a packet was computed from", "404 also for a report made before records were archived.")
        },
        E::SigningKeyPem => Operation {
            answers: vec![(
                200,
                answer(
                    "One published key (current, retired or revoked: the keys document says which) as PEM SubjectPublicKeyInfo, for OpenSSL, cosign, trestle and Sigstore verifiers.",
                    "application/x-pem-file",
                    json!({ "type": "string" }),
                    &["Cache-Control", "Access-Control-Allow-Origin"],
                ),
            ), (404, error("No published key has this id, or the name does not end in `.pem`."))],
            ..op("getSigningKeyPem", "A signing key as PEM", "")
        },
        E::ReportAttestation => Operation {
            parameters: vec![query(
                "predicate",
                "`vouch` (default): vouch's predicate, per-control status; `trestle`: compliance-trestle's JSON-signing predicate, for `trestle verify`.",
                json!({ "type": "string", "enum": ["vouch", "trestle"] }),
            )],
            answers: vec![
                (
                    200,
                    answer(
                        "A DSSE envelope whose payload is an in-toto Statement v1; its subject `packet.json` has the packet's `canonical_sha256`. Signed over DSSE's PAE with the key that signed the packet.",
                        "application/vnd.in-toto+json",
                        json!({ "type": "object", "required": ["payload", "payloadType", "signatures"] }),
                        &[],
                    ),
                ),
                (400, error("`predicate` is neither `vouch` nor `trestle`.")),
                (409, error("The report failed; there is no packet.")),
            ],
            ..op("getReportAttestation", "The packet as an in-toto attestation (DSSE)", "404 also for a report made before attestations were stored.")
        },
        E::ReportBundle => Operation {
            answers: vec![
                (
                    200,
                    answer(
                        "A Sigstore bundle v0.3 carrying the DSSE envelope, its key named by `verificationMaterial.publicKey.hint` (the key id). No transparency-log entry: verify with the platform's published key.",
                        "application/vnd.dev.sigstore.bundle.v0.3+json",
                        json!({ "type": "object", "required": ["mediaType", "verificationMaterial", "dsseEnvelope"] }),
                        &[],
                    ),
                ),
                (409, error("The report failed; there is no packet.")),
            ],
            ..op("getReportBundle", "The packet's attestation as a Sigstore bundle", "404 also for a report made before attestations were stored.")
        },
        E::ReportOscal => Operation {
            answers: vec![
                (
                    200,
                    answer(
                        "NIST OSCAL assessment-results: one result for the period, an observation per resource judged, a finding per control, the signed packet linked by SHA-256 in the back matter. Deterministic: every download is the same bytes.",
                        "application/json",
                        json!({ "type": "object", "required": ["assessment-results"] }),
                        &[],
                    ),
                ),
                (409, error("The report failed; there is no packet.")),
            ],
            ..op("getReportOscal", "The packet as OSCAL assessment-results", "")
        },
        E::ReportInclusion => Operation {
            answers: vec![
                (200, ok_json("The packet's entry in the transparency log (digests and ids only), its RFC 6962 audit path and the signed checkpoint of the tree it leads to. `vouch verify PACKET --keys URL --log FILE` checks all three against the log key of the keys document.", "InclusionProof")),
                (409, error("The report failed; there is no packet.")),
            ],
            ..op("getReportInclusion", "The packet's transparency-log inclusion proof", "")
        },
        E::ReportTimestamp => Operation {
            answers: vec![
                (
                    200,
                    answer(
                        "The RFC 3161 time-stamp response (DER) of the packet's signature: its imprint is the SHA-256 of the 64 signature bytes. `openssl ts -verify -in FILE -digest HEX -CAfile CA` or `vouch verify PACKET --timestamp FILE --tsa-ca CA` checks it.",
                        "application/timestamp-reply",
                        json!({ "type": "string", "format": "binary" }),
                        &[],
                    ),
                ),
                (409, error("The report failed; there is no packet.")),
            ],
            ..op("getReportTimestamp", "The packet's trusted timestamp", "404 also when no time-stamping authority was configured when the packet was generated.")
        },
        E::ReportDiff => Operation {
            parameters: vec![{
                let mut q = query(
                    "against",
                    "The report to compare with (the earlier packet): the answer lists how the path's report differs from it.",
                    json!({ "type": "string", "minLength": 1 }),
                );
                q["required"] = json!(true);
                q
            }],
            answers: vec![
                (200, ok_json("Both packets verified against the published keys; per control, how its status moved (`regression`, `improvement`, `changed`, `unchanged`, `added`, `removed`) and the findings added and removed (by resource, field and expectation).", "ReportDiff")),
                (400, error("`against` is missing (`bad_against`), or the packets are of different frameworks (`different_frameworks`).")),
                (409, error("Either report failed (`report_failed`), or either packet no longer verifies, its key revoked (`packet_unverifiable`).")),
            ],
            ..op("getReportDiff", "What changed between two packets", "Members and above. `vouch diff A B --fail-on regression` does the same offline and exits 1 on a regression.")
        },
        E::Schedule => Operation {
            answers: vec![(200, ok_json("The cadence, and per active subscription whether it is paused, its next period and when it is due, and its latest scheduled run.", "Schedule"))],
            ..op("getSchedule", "The organization's schedule of packets", "Members and above. Every active, unpaused subscription gets a packet per period of the cadence, `delay_seconds` after the period ends, listed with `trigger: scheduled`.")
        },
        E::SetCadence => Operation {
            parameters: vec![csrf_header()],
            body: Some(schema_ref("CadenceRequest")),
            answers: vec![(200, ok_json("The schedule as it now stands.", "Schedule"))],
            ..op("setCadence", "Set the cadence of scheduled packets", "Owners and admins. A change applies to periods ending after it.")
        },
        E::PauseSchedule => Operation {
            parameters: vec![csrf_header()],
            body: Some(schema_ref("PauseRequest")),
            answers: vec![
                (200, ok_json("The schedule as it now stands.", "Schedule")),
                (402, error("The organization is not subscribed to the framework.")),
            ],
            ..op("pauseSchedule", "Pause or resume a subscription's scheduled packets", "Owners and admins. Periods that end while paused get no packet (the series shows the gap); resuming starts again from the period that holds the resumption.")
        },
        E::Webhooks => Operation {
            answers: vec![(200, ok_json("The organization's endpoints (never their secrets), with their deliveries counted: pending (waiting or being retried), delivered, failed (out of attempts), and the latest failure's reason.", "WebhookList"))],
            ..op("listWebhooks", "The organization's webhook endpoints", "Owners and admins.")
        },
        E::CreateWebhook => Operation {
            parameters: vec![csrf_header()],
            body: Some(schema_ref("WebhookRequest")),
            answers: vec![
                (201, ok_json("The endpoint, with its signing secret: shown this once. Deliveries follow the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`); a 2xx ends a delivery, anything else is retried with backoff.", "WebhookCreated")),
                (400, error("The URL names a loopback, private or link-local address or `localhost` (`bad_webhook`).")),
                (409, error("The organization has 20 endpoints already (`too_many_webhooks`).")),
            ],
            ..op("createWebhook", "Register a webhook endpoint", "Owners and admins. Event types: `packet.generated`, `packet.failed`, `control.regressed`, `signing_key.rotated`, `signing_key.revoked`.")
        },
        E::DeleteWebhook => Operation {
            parameters: vec![csrf_header()],
            answers: vec![(200, answer("The endpoint is deleted; its pending deliveries are not sent.", "application/json", json!({ "type": "object", "required": ["deleted"], "properties": { "deleted": { "type": "string" } } }), &[]))],
            ..op("deleteWebhook", "Delete a webhook endpoint", "Owners and admins.")
        },
        E::Grants => Operation {
            answers: vec![(200, ok_json("The organization's auditor grants, newest first, each with whether it is in force.", "GrantList"))],
            ..op("listGrants", "Outside auditors' access", "Owners and admins.")
        },
        E::CreateGrant => Operation {
            parameters: vec![csrf_header()],
            body: Some(schema_ref("GrantRequest")),
            answers: vec![
                (201, ok_json("The grant: until `expires_at` the auditor, signing in with their own credentials, reads this framework's packets of the period range (listing, packet, PDF, records, attestations, OSCAL, inclusion proof, timestamp, diffs), and nothing else; every read is audited under their name.", "Grant")),
                (400, error("`expires_at` is not in the future or more than a year out, or the period range is inverted (`bad_grant`).")),
                (404, error("No such user, or no such framework.")),
                (409, error("The user is a member of the organization and reads everything already (`already_member`).")),
            ],
            ..op("createGrant", "Grant an outside auditor read access to one framework", "Owners and admins.")
        },
        E::RevokeGrant => Operation {
            parameters: vec![csrf_header()],
            answers: vec![(200, answer("The grant is revoked: the auditor's next request is a 404.", "application/json", json!({ "type": "object", "required": ["revoked"], "properties": { "revoked": { "type": "string" } } }), &[]))],
            ..op("revokeGrant", "Revoke an auditor's access", "Owners and admins. 404 also for a grant that already ended.")
        },
        E::LogCheckpoint => Operation {
            answers: vec![(
                200,
                answer(
                    "The log's latest checkpoint as a C2SP signed note: origin, tree size, base64 root hash, a blank line, and the signature line of the log key (`log` in the keys document).",
                    "text/plain",
                    json!({ "type": "string" }),
                    &["Cache-Control", "Access-Control-Allow-Origin"],
                ),
            )],
            ..op("getLogCheckpoint", "The transparency log's signed checkpoint", "Public: the log holds digests and ids only.")
        },
        E::LogConsistency => Operation {
            parameters: vec![
                query("first", "The older tree size (default 0).", json!({ "type": "integer", "minimum": 0 })),
                query("second", "The newer tree size (default: the log's size now).", json!({ "type": "integer", "minimum": 0 })),
            ],
            answers: vec![
                (200, answer("The RFC 6962 consistency proof that the tree of `first` leaves is a prefix of the tree of `second` leaves.", "application/json", schema_ref("Consistency"), &["Cache-Control", "Access-Control-Allow-Origin"])),
                (400, error("A size is not a decimal number (at most 19 digits).")),
                (404, error("`first` is larger than `second`, or `second` is larger than the log: there is no such proof (`no_such_tree_size`).")),
                (500, error("Internal error.")),
            ],
            ..op("getLogConsistency", "A consistency proof between two tree sizes", "Public.")
        },
        E::LogEntries => Operation {
            parameters: vec![
                query("start", "The first leaf index (default 0).", json!({ "type": "integer", "minimum": 0 })),
                query("end", "One past the last leaf index (default: the log's size; at most 1000 entries are served).", json!({ "type": "integer", "minimum": 0 })),
            ],
            answers: vec![
                (200, answer("The log's entries in order; each leaf is the entry's bytes as served (canonical JSON).", "application/json", schema_ref("Entries"), &["Cache-Control", "Access-Control-Allow-Origin"])),
                (400, error("A bound is not a decimal number (at most 19 digits); a page beyond the log is empty, not an error.")),
                (500, error("Internal error.")),
            ],
            ..op("getLogEntries", "The transparency log's entries", "Public: monitors rebuild the tree from them.")
        },
        E::LegacyReport => Operation {
            answers: vec![
                (200, ok_json("Compact JSON, keys `report` then `signature`; the HMAC is over the exact bytes of the `report` value.", "LegacyReportSigned")),
                (503, error("The HMAC key is not configured.")),
            ],
            ..op("legacyReport", "The legacy HMAC-signed report", "Kept for clients of the first API (seed 001); packets are signed with Ed25519 and verifiable with published keys, this report only with the shared HMAC key.")
        },
        E::UiPage => Operation {
            answers: vec![(
                200,
                answer("The page.", "text/html", json!({ "type": "string" }), &[]),
            )],
            ..op("compliancePage", "The Compliance dashboard", "HTML for browsers: subscriptions, generation, packets verified in the browser.")
        },
        E::UiAsset => Operation {
            answers: vec![
                (
                    200,
                    {
                        let mut r = headed("The dashboard's script or stylesheet.", &[]);
                        r["content"] = json!({
                            "text/javascript": { "schema": { "type": "string" } },
                            "text/css": { "schema": { "type": "string" } }
                        });
                        r
                    },
                ),
                (404, error("No such file.")),
            ],
            ..op("dashboardAsset", "The dashboard's static files", "")
        },
    }
}

/// The answers a route gives because of its access, body and parameters.
fn common_answers(route: &Route) -> Vec<(u16, Value)> {
    let mut out = vec![(
        405,
        error_with(
            "Method not allowed on this path; `Allow` lists those that are (HEAD wherever GET is).",
            &["Allow"],
        ),
    )];
    if route.max_body > 0 {
        out.push((400, error("The body is not the JSON described (duplicate keys, unknown fields and invisible formatting characters are refused).")));
        out.push((
            408,
            error(&format!(
                "The body did not arrive within {} s.",
                BODY_TIMEOUT.as_secs()
            )),
        ));
        out.push((
            413,
            error(&format!(
                "The body is larger than {} bytes.",
                route.max_body
            )),
        ));
        out.push((
            415,
            error("The body is not `Content-Type: application/json`."),
        ));
    } else {
        out.push((413, error("This route takes no body.")));
    }
    if route.path.contains('{') {
        out.push((400, error("A path parameter is not percent-encoded UTF-8.")));
    }
    match route.access {
        Access::Public => {}
        Access::Admin => {
            out.push((
                401,
                error_with(
                    "The admin bearer token is missing or wrong.",
                    &["WWW-Authenticate"],
                ),
            ));
            out.push((
                503,
                error("The admin API is off (no admin token configured)."),
            ));
        }
        Access::User => {
            out.push((
                401,
                error_with(
                    "HTTP Basic credentials are missing or wrong.",
                    &["WWW-Authenticate"],
                ),
            ));
            out.push((403, error("The caller's role is below the one needed, or a browser request came from another site or lacks the page's X-Vouch-CSRF token.")));
            out.push((404, error("No such organization, report or framework, or one the caller is not a member of (an outside auditor: outside their grant, or after it ended).")));
            out.push((
                429,
                error_with("Too many failed logins from this address or for this user, or password checks saturated.", &["Retry-After"]),
            ));
            out.push((
                500,
                error("Internal error; the cause is in the server's log under the request id."),
            ));
        }
    }
    out
}

/// A framework identifier: lower-case letters, digits and `_`.
fn framework_id() -> Value {
    json!({ "type": "string", "pattern": vouch_engine::framework::IDENTIFIER_PATTERN, "example": "soc2" })
}

fn path_parameter(name: &str) -> Value {
    let (description, example) = match name {
        "orgId" => ("An organization the caller is a member of.", "acme"),
        "framework" => ("A framework identifier.", "soc2"),
        "reportId" => (
            "A report id (`r-` and a UUID).",
            "r-00000000-0000-0000-0000-000000000000",
        ),
        "keyFile" => ("A published key id and `.pem`.", "key-2026-06-0123abcd.pem"),
        "grantId" => (
            "An auditor grant id (`g-` and a UUID).",
            "g-00000000-0000-0000-0000-000000000000",
        ),
        "endpointId" => (
            "A webhook endpoint id (`wh-` and a UUID).",
            "wh-00000000-0000-0000-0000-000000000000",
        ),
        _ => ("A file of the dashboard.", "dashboard.js"),
    };
    let schema = if name == "framework" {
        framework_id()
    } else {
        json!({ "type": "string", "minLength": 1 })
    };
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": schema, "example": example
    })
}

fn path_item(route: &Route) -> Value {
    let own = operation(route.endpoint);
    let mut responses: std::collections::BTreeMap<u16, Value> =
        common_answers(route).into_iter().collect();
    // A route's own description of a status wins over the generic one.
    responses.extend(own.answers);
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(path_parameter)
        .collect();
    parameters.extend(own.parameters);
    let security = match route.access {
        Access::Public => json!([]),
        Access::User => json!([{ "basic": [] }]),
        Access::Admin => json!([{ "bearer": [] }]),
    };
    let mut op = json!({
        "operationId": own.id,
        "summary": own.summary,
        "security": security,
        "parameters": parameters,
        "responses": responses.into_iter().map(|(s, r)| (s.to_string(), r)).collect::<Map<_, _>>(),
    });
    if !own.description.is_empty() {
        op["description"] = json!(own.description);
    }
    if let Some(schema) = own.body {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": schema } }
        });
    }
    op
}

/// Schemas of what the server writes (serialize contract) and reads
/// (deserialize contract; request bodies are inlined so the two never share
/// a name).
fn schemas() -> Map<String, Value> {
    fn add<T: JsonSchema>(g: &mut SchemaGenerator) {
        let _ = g.subschema_for::<T>();
    }
    let mut out = SchemaSettings::draft2020_12()
        .for_serialize()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    add::<vouch_engine::Packet>(&mut out);
    add::<vouch_engine::signing::Signature>(&mut out);
    add::<vouch_engine::keys::KeysDocument>(&mut out);
    add::<vouch_engine::RecordsDocument>(&mut out);
    add::<crate::service::reports::Page>(&mut out);
    add::<crate::service::subscriptions::SubscriptionView>(&mut out);
    add::<crate::service::legacy::LegacyReport<'static>>(&mut out);
    add::<crate::import::Applied>(&mut out);
    add::<vouch_engine::tlog::InclusionProof>(&mut out);
    add::<crate::service::log::Consistency>(&mut out);
    add::<crate::service::log::Entries>(&mut out);
    add::<crate::service::reports::Diff>(&mut out);
    add::<crate::service::schedule::ScheduleView>(&mut out);
    add::<crate::service::webhooks::Webhook>(&mut out);
    add::<crate::service::grants::GrantView>(&mut out);
    add::<crate::service::webhooks::Created>(&mut out);
    let mut defs = out.take_definitions(true);

    let mut inn = SchemaSettings::draft2020_12()
        .for_deserialize()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut request = |name: &str, schema: schemars::Schema| {
        let mut v = schema.to_value();
        if let Some(o) = v.as_object_mut() {
            o.remove("$schema");
        }
        defs.insert(name.into(), v);
    };
    request(
        "GenerateRequest",
        inn.root_schema_for::<super::handlers::GenerateBody>(),
    );
    request("ImportBatch", inn.root_schema_for::<crate::import::Batch>());
    request(
        "CadenceRequest",
        inn.root_schema_for::<super::handlers::CadenceBody>(),
    );
    request(
        "GrantRequest",
        inn.root_schema_for::<crate::service::grants::NewGrant>(),
    );
    request(
        "WebhookRequest",
        inn.root_schema_for::<crate::service::webhooks::NewWebhook>(),
    );
    request(
        "PauseRequest",
        inn.root_schema_for::<super::handlers::PauseBody>(),
    );

    let hand = json!({
        "Error": {
            "type": "object", "additionalProperties": false, "required": ["error"],
            "properties": { "error": {
                "type": "object", "additionalProperties": false, "required": ["code", "message"],
                "properties": {
                    "code": { "type": "string", "description": "Stable, for programs." },
                    "message": { "type": "string", "description": "For people; never an internal cause." }
                }
            }}
        },
        "HealthStatus": {
            "type": "object", "additionalProperties": false, "required": ["status"],
            "properties": { "status": { "type": "string", "enum": ["ok", "ready"] } }
        },
        "SubscriptionList": {
            "type": "object", "additionalProperties": false, "required": ["subscriptions"],
            "properties": { "subscriptions": { "type": "array", "items": schema_ref("Subscription") } }
        },
        "GrantList": {
            "type": "object", "additionalProperties": false, "required": ["grants"],
            "properties": { "grants": { "type": "array", "items": schema_ref("Grant") } }
        },
        "WebhookList": {
            "type": "object", "additionalProperties": false, "required": ["webhooks"],
            "properties": { "webhooks": { "type": "array", "items": schema_ref("Webhook") } }
        },
        "AppliedBatch": {
            "type": "object", "additionalProperties": false, "required": ["applied"],
            "properties": { "applied": schema_ref("Applied") }
        },
        "SignedPacket": {
            "description": "The packet is embedded as its canonical bytes, verbatim: the exact bytes of the `packet` value are what was signed.",
            "type": "object", "additionalProperties": false, "required": ["report_id", "packet", "signature"],
            "properties": {
                "report_id": { "type": "string" },
                "packet": schema_ref("Packet"),
                "signature": schema_ref("Signature")
            }
        },
        "LegacyReportSigned": {
            "type": "object", "additionalProperties": false, "required": ["report", "signature"],
            "properties": {
                "report": schema_ref("LegacyReport"),
                "signature": {
                    "type": "object", "additionalProperties": false, "required": ["algorithm", "value"],
                    "properties": {
                        "algorithm": { "const": "HMAC-SHA256" },
                        "value": { "type": "string", "pattern": "^[0-9a-f]{64}$" }
                    }
                }
            }
        }
    });
    if let Value::Object(hand) = hand {
        defs.extend(hand);
    }
    defs
}

fn headers() -> Value {
    let string = json!({ "type": "string" });
    json!({
        "X-Request-Id": { "description": "The request's id: the client's `X-Request-Id` when it is 1 to 64 letters, digits and dashes, a new UUID otherwise; the server's log lines carry it.", "schema": string },
        "Location": { "description": "Where the packet can be downloaded.", "schema": string },
        "ETag": { "description": "Strong tag of this body.", "schema": string },
        "Cache-Control": { "schema": string },
        "Access-Control-Allow-Origin": { "schema": string },
        "Content-Disposition": { "description": "`attachment; filename=\"<report id>.pdf\"`", "schema": string },
        "X-Vouch-PDF": { "description": "`stored`: rendered after generation and kept; `rendered`: rendered for this request (the stored rendition was missing).", "schema": { "type": "string", "enum": ["stored", "rendered"] } },
        "WWW-Authenticate": { "schema": string },
        "Retry-After": { "description": "Seconds to wait.", "schema": { "type": "integer", "minimum": 1 } },
        "Allow": { "description": "The methods this path answers.", "schema": string }
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in &ROUTES {
        let item = paths.entry(route.path).or_insert_with(|| json!({}));
        item[route.method.as_str().to_lowercase()] = path_item(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "vouch",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Signed compliance evidence from a managed-database platform's records.\n\n\
                Errors are `{\"error\":{\"code\",\"message\"}}`. An organization or report the caller may not see answers 404, as an unknown one does. \
                HEAD is answered wherever GET is. Every answer carries `X-Request-Id`. Credentials are checked before any byte of a body is read; \
                bodies are JSON (`Content-Type: application/json`, duplicate keys refused) and bounded per route. Timestamps are RFC 3339 in the years 1970 to 9999 and written in UTC with `Z`.\n\n\
                This document is generated from the server's route table and types (`server/src/http/openapi.rs`)."
        },
        "servers": [{ "url": "http://127.0.0.1:8080" }],
        "security": [{ "basic": [] }],
        "components": {
            "securitySchemes": {
                "basic": { "type": "http", "scheme": "basic", "description": "A user's name and password." },
                "bearer": { "type": "http", "scheme": "bearer", "description": "The admin token (`--admin-token-file`)." }
            },
            "headers": headers(),
            "schemas": schemas()
        },
        "paths": paths
    })
}

/// The document as committed: pretty JSON and a final newline.
pub fn render() -> String {
    let mut s = serde_json::to_string_pretty(&document()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_json_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let generated = render();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
            return;
        }
        assert!(
            crate::OPENAPI == generated,
            "server/openapi.json is stale: regenerate it with `UPDATE_OPENAPI=1 cargo test -p vouch --lib openapi` and commit it"
        );
    }

    #[test]
    fn every_route_is_documented_with_its_security() {
        let doc = document();
        for r in &ROUTES {
            let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{} {}", r.method, r.path);
            let public = op["security"] == json!([]);
            assert_eq!(
                public,
                r.access == Access::Public,
                "{} {}",
                r.method,
                r.path
            );
            assert!(op["responses"]["405"]["headers"]["Allow"].is_object());
            if r.access == Access::User {
                for s in ["401", "403", "404", "429"] {
                    assert!(
                        op["responses"][s].is_object(),
                        "{} {} {s}",
                        r.method,
                        r.path
                    );
                }
            }
        }
    }
}
