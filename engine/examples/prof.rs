#[path = "../benches/common/mod.rs"]
mod common;
fn main() {
    let fw = vouch_engine::FrameworkSet::builtin().unwrap();
    let soc2 = fw.get("soc2").unwrap();
    let now: vouch_engine::Timestamp = "2026-06-22T10:00:00Z".parse().unwrap();
    let doc = common::records(10_000);
    let root = doc.to_value();
    let period = vouch_engine::Period::month_ending_at(now);
    let mode = std::env::args().nth(1).unwrap_or_default();
    for _ in 0..20 {
        let t = std::time::Instant::now();
        if mode == "eval" {
            std::hint::black_box(vouch_engine::eval::evaluate_controls(
                &soc2.controls,
                &root,
                &period,
                &vouch_engine::NoPluginHost,
            ));
        } else {
            std::hint::black_box(vouch_engine::assemble(soc2, &doc, now, None).unwrap());
        }
        eprintln!("{:?}", t.elapsed());
    }
}
