/// The names of the metrics a state store reports through the engine's metrics factory (any
/// store: recurd gives each its help text and buckets).
public enum StoreMetricNames {
    /// `recurd_store_commit_seconds`.
    public static let commitLatency = "recurd_store_commit_seconds"
    /// `recurd_store_written_bytes_total`.
    public static let writtenBytes = "recurd_store_written_bytes_total"
}
