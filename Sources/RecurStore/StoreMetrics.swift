import CoreMetrics
import RecurEngine

/// The state store's metrics (docs/OBSERVABILITY.md): one observation per group commit, on the
/// writer thread.
struct StoreMetrics: Sendable {
    /// Seconds one group commit (a write transaction of every queued operation) took.
    let commitLatency: Timer
    /// Bytes of records written: token blobs, held text, checkpoint records.
    let writtenBytes: Counter

    typealias Name = StoreMetricNames

    init(factory: any MetricsFactory) {
        commitLatency = Timer(label: Name.commitLatency, factory: factory)
        writtenBytes = Counter(label: Name.writtenBytes, factory: factory)
    }

    /// Records a commit that started at `start` and wrote `bytes`.
    func committed(bytes: Int, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        commitLatency.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        writtenBytes.increment(by: bytes)
    }
}

