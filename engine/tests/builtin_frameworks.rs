//! The four built-in frameworks on the example records: a service that lacks TLS
//! and encryption and sits outside the EU is named wherever it matters, and
//! every example produces, for every framework, a packet that verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use vouch_engine::verify::verify_body;
use vouch_engine::{assemble, RecordsDocument, Status};

fn example(name: &str) -> RecordsDocument {
    let path = format!(
        "{}/../examples/records/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    RecordsDocument::from_json_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_four_frameworks_are_built_in() {
    assert_eq!(
        builtin().ids(),
        vec!["dora", "eu_ai_act", "gdpr_ropa", "soc2"]
    );
    let counts: Vec<usize> = ["soc2", "gdpr_ropa", "dora", "eu_ai_act"]
        .iter()
        .map(|id| builtin().get(id).unwrap().controls.len())
        .collect();
    assert!(
        counts[0] >= 15 && counts[1] >= 8 && counts[2] >= 10 && counts[3] >= 8,
        "{counts:?}"
    );
}

#[test]
fn a_non_eu_service_without_tls_or_encryption_is_named_by_every_framework() {
    let records = example("one-bad-service");
    for fw in builtin().iter() {
        let packet = assemble(fw, &records, ts("2026-06-22T10:00:00Z"), None).unwrap();
        assert!(
            !packet.summary.all_services_eu_residency,
            "{}",
            fw.framework
        );
        let mut concerned = 0;
        for c in &packet.controls {
            let refs = c.evidence_refs.join(" ");
            let about_service_security = ["tls_enabled", "storage_encrypted", "eu_residency"]
                .iter()
                .any(|field| {
                    refs.contains(&format!("services[*].{field}"))
                        || refs.contains(&format!("services[*].history[*].{field}"))
                });
            if !about_service_security {
                continue;
            }
            concerned += 1;
            assert_eq!(
                c.status,
                Status::Exception,
                "{} {}",
                fw.framework,
                c.control_id
            );
            assert!(
                c.findings.iter().any(|f| f.resource == "svc-legacy"),
                "{} {} does not name svc-legacy: {:?}",
                fw.framework,
                c.control_id,
                c.findings
            );
        }
        assert!(
            concerned >= 1,
            "{}: only {concerned} controls concern TLS, encryption or residency",
            fw.framework
        );
    }
}

#[test]
fn every_example_gives_every_framework_a_packet_that_verifies() {
    let signer = rfc8032_signer();
    let keys = keys_for(&signer);
    for name in ["seed-only", "full", "one-bad-service"] {
        let records = example(name);
        for fw in builtin().iter() {
            let packet = assemble(fw, &records, ts("2026-06-22T10:00:00Z"), None).unwrap();
            let signed = signer.sign(packet).unwrap();
            let ok = verify_body(&signed.body(Some("r-1")), &keys).unwrap();
            assert_eq!(ok.framework, fw.framework);
        }
    }
}

#[test]
fn full_records_attest_everything() {
    let records = example("full");
    for fw in builtin().iter() {
        let packet = assemble(fw, &records, ts("2026-06-22T10:00:00Z"), None).unwrap();
        for c in &packet.controls {
            assert_eq!(
                c.status,
                Status::Attested,
                "{} {}: {:?} {:?}",
                fw.framework,
                c.control_id,
                c.findings,
                c.notes
            );
        }
    }
}

#[test]
fn seed_only_records_still_evaluate_and_never_attest_without_evidence() {
    let records = example("seed-only");
    for fw in builtin().iter() {
        let packet = assemble(fw, &records, ts("2026-06-22T10:00:00Z"), None).unwrap();
        let inconclusive = packet
            .controls
            .iter()
            .filter(|c| c.status == Status::Inconclusive)
            .count();
        if fw.framework == "eu_ai_act" {
            // The seed does not say whether any service is high-risk AI:
            // unknown is never "not applicable".
            assert!(packet
                .controls
                .iter()
                .all(|c| c.status == Status::Inconclusive));
        } else {
            assert!(
                inconclusive > 0,
                "{}: the seed lacks members, runs, restore tests",
                fw.framework
            );
        }
    }
}

#[test]
fn every_citation_is_listed_in_the_frameworks_readme() {
    let readme = std::fs::read_to_string(format!(
        "{}/../frameworks/README.md",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for fw in builtin().iter() {
        assert!(!fw.version.trim().is_empty() && !fw.statement.trim().is_empty());
        for c in &fw.controls {
            let row = format!(
                "| `{}` | `{}` | {} |",
                fw.framework, c.control_id, c.reference
            );
            assert!(
                readme.contains(&row),
                "frameworks/README.md does not list {} {} with its reference `{}`",
                fw.framework,
                c.control_id,
                c.reference
            );
        }
    }
}
