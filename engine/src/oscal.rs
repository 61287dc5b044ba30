//! NIST OSCAL assessment-results for a signed packet, for GRC tools
//! (compliance-trestle and others) to import.
//!
//! One result for the period; one observation per resource a control judged
//! (as many as the packet lists); one finding per control, its target status
//! mapped from vouch's status:
//!
//! | vouch | OSCAL `target.status` |
//! |---|---|
//! | attested | `satisfied` (reason `pass`) |
//! | exception | `not-satisfied` (reason `fail`) |
//! | inconclusive | `not-satisfied` (reason `other`): unknown is never satisfied |
//! | not_applicable | `satisfied` (reason `other`), `implementation-status` `not-applicable` |
//!
//! OSCAL's objective status has only `satisfied` and `not-satisfied`, so
//! "not applicable" is said by `implementation-status` and by vouch's own
//! status, kept in every finding as the property `vouch-status` in
//! [`NS`]. The back matter links the signed packet by its SHA-256.
//!
//! Deterministic: every UUID is a version-5 UUID of the report id (or, for a
//! packet without one, its digest) and the part's name, and the document
//! takes its times from the packet, so two downloads are byte-identical.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::eval::{ControlResult, Status};
use crate::packet::Packet;
use crate::signing::sha256_hex;

/// The namespace of vouch's OSCAL properties.
pub const NS: &str = "https://example.invalid/vouch/ns/oscal";
/// The OSCAL version the document is written to (compliance-trestle's).
pub const OSCAL_VERSION: &str = "1.2.1";

/// The assessment-results document of the packet whose canonical bytes are
/// `canonical`. `report_id` names it on the server; `packet_href` is where
/// the packet is read (its download URL, or `packet.json`).
pub fn assessment_results(
    canonical: &[u8],
    report_id: Option<&str>,
    packet_href: &str,
) -> Result<Value, serde_json::Error> {
    let p: Packet = serde_json::from_slice(canonical)?;
    let digest = sha256_hex(canonical);
    let base = report_id.map_or_else(|| digest.clone(), str::to_owned);
    let id =
        |name: &str| Uuid::new_v5(&namespace(), format!("{base}/{name}").as_bytes()).to_string();
    let packet_resource = id("back-matter/packet");
    let prop = |name: &str, value: &str| json!({"name": name, "ns": NS, "value": value});

    let mut observations = vec![];
    let mut findings = vec![];
    for c in &p.controls {
        let token = token(&c.control_id);
        let mut related = vec![];
        for r in c.population.iter().flat_map(|p| &p.resources) {
            let uuid = id(&format!("observation/{}/{}", c.control_id, r.resource));
            let verdict = serde_json::to_value(r.verdict)?;
            let verdict = verdict.as_str().unwrap_or("unknown");
            let mut o = json!({
                "uuid": uuid,
                "title": format!("{}: {}", c.control_id, r.resource),
                "description": format!("{} judged `{}`: {verdict}.", c.control_id, r.resource),
                "props": [prop("vouch-verdict", verdict), prop("resource", &r.resource)],
                "methods": ["TEST"],
                "types": ["control-objective"],
                "subjects": [{
                    "subject-uuid": id(&format!("resource/{}", r.resource)),
                    "type": "resource",
                    "title": r.resource,
                }],
                "relevant-evidence": [{
                    "href": format!("#{packet_resource}"),
                    "description": "The signed evidence packet: this control's population.",
                }],
                "collected": p.generated_at,
            });
            if let Some(reason) = &r.reason {
                o["remarks"] = json!(reason);
            }
            related.push(json!({"observation-uuid": uuid}));
            observations.push(o);
        }
        let mut f = json!({
            "uuid": id(&format!("finding/{}", c.control_id)),
            "title": c.title,
            "description": c.assertion,
            "props": [prop("vouch-status", c.status.as_str()), prop("control-id", &c.control_id)],
            "target": target(c, &token),
        });
        if !related.is_empty() {
            f["related-observations"] = json!(related);
        }
        let remarks: Vec<String> = c
            .findings
            .iter()
            .map(|x| format!("{}: {}", x.resource, x.observed))
            .chain(c.notes.iter().cloned())
            .collect();
        if !remarks.is_empty() {
            f["remarks"] = json!(remarks.join("\n"));
        }
        findings.push(f);
    }
    let controls: Vec<Value> = p
        .controls
        .iter()
        .map(|c| json!({"control-id": token(&c.control_id)}))
        .collect();
    let mut result = json!({
        "uuid": id("result"),
        "title": format!("{} for {}, {} to {}", p.framework, p.organization.id, p.period_start, p.period_end),
        "description": p.scope_boundary,
        "start": p.period_start,
        "end": p.period_end,
        "props": [prop("packet-sha256", &digest)],
        "reviewed-controls": {"control-selections": [{"include-controls": controls}]},
        "findings": findings,
    });
    if !observations.is_empty() {
        result["observations"] = json!(observations);
    }
    let mut metadata = json!({
        "title": format!("vouch evidence packet: {} for {}", p.framework, p.organization.name),
        "last-modified": p.generated_at,
        "version": p.framework_version.clone().unwrap_or_else(|| p.schema_version.clone()),
        "oscal-version": OSCAL_VERSION,
        "props": [prop("framework", &p.framework), prop("organization-id", &p.organization.id)],
    });
    if let (Some(r), Some(props)) = (report_id, metadata["props"].as_array_mut()) {
        props.push(prop("report-id", r));
    }
    Ok(json!({"assessment-results": {
        "uuid": id("assessment-results"),
        "metadata": metadata,
        // No assessment plan exists: the framework file is the plan, and
        // the packet names it by digest.
        "import-ap": {"href": format!("#{packet_resource}")},
        "results": [result],
        "back-matter": {"resources": [{
            "uuid": packet_resource,
            "title": "The signed evidence packet",
            "description": "The packet's canonical bytes; verify them with the platform's published keys.",
            "rlinks": [{
                "href": packet_href,
                "media-type": "application/json",
                "hashes": [{"algorithm": "SHA-256", "value": digest}],
            }],
        }]},
    }}))
}

fn target(c: &ControlResult, token: &str) -> Value {
    let (state, reason) = match c.status {
        Status::Attested => ("satisfied", "pass"),
        Status::Exception => ("not-satisfied", "fail"),
        Status::NotApplicable => ("satisfied", "other"),
        Status::Inconclusive => ("not-satisfied", "other"),
    };
    let mut t = json!({
        "type": "objective-id",
        "target-id": token,
        "title": c.reference,
        "status": {"state": state, "reason": reason},
    });
    match c.status {
        Status::NotApplicable => {
            t["status"]["remarks"] = json!("not applicable: every resource is out of scope");
            t["implementation-status"] = json!({"state": "not-applicable"});
        }
        Status::Inconclusive => {
            t["status"]["remarks"] =
                json!("inconclusive: the evidence does not show the control holds");
        }
        _ => {}
    }
    t
}

/// The namespace of vouch's version-5 UUIDs.
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, NS.as_bytes())
}

/// A control id as an OSCAL token (an XML NCName): other characters become `_`.
fn token(id: &str) -> String {
    let mut out: String = id
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}
