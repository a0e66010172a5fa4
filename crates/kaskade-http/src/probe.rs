//! What the HTTP listener asks of the node it belongs to.

/// The node's side of the probes: readiness and the metrics text. Both are
/// called from a blocking thread (metrics may walk every partition), so
/// they may take locks but must not wait on async work.
pub trait Probe: Send + Sync + 'static {
    /// Whether the node serves clients: its Kafka listeners are bound and
    /// its logs are loaded.
    fn ready(&self) -> bool;

    /// Appends every metric in Prometheus' text exposition format (0.0.4).
    fn render_metrics(&self, out: &mut String);
}
