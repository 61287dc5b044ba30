//! Prometheus metrics: requests by route and status, latencies, packets generated.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub packets: IntCounterVec,
    /// PDF renderings this server ran, by outcome (`stored`, `failed`).
    pub renders: IntCounterVec,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "vouch_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "vouch_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route"],
        )?;
        let packets = IntCounterVec::new(
            Opts::new(
                "vouch_packets_generated_total",
                "Evidence packets generated, by framework and status",
            ),
            &["framework", "status"],
        )?;
        let renders = IntCounterVec::new(
            Opts::new(
                "vouch_pdf_renders_total",
                "PDF renderings run by this server, by outcome",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(renders.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(packets.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            packets,
            renders,
        })
    }

    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        // Encoding our own well-formed families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}
