import CoreMetrics

/// The engine's metrics (docs/OBSERVABILITY.md), made from the factory the daemon passes in
/// `EngineOptions.metricsFactory`; with none they go nowhere. Recorded once per step from the
/// step's rows, on the engine thread, after the step's lock is released where possible.
struct EngineMetrics: Sendable {
    /// Tokens fed by clients and absorbed (a restore's replay is not counted).
    let tokensAbsorbed: Counter
    /// Rows (streams) stepped together, one observation per step.
    let stepBatchSize: Recorder
    /// −log₂ p of each absorbed token under the prediction made before it, in bits.
    let surprisal: Recorder
    /// Streams moved out of memory (to the store, or dropped) to make room for another.
    let streamsEvicted: Counter
    /// Streams moved out of memory (to the store, or dropped) after --idle-timeout.
    let streamsExpired: Counter

    typealias Name = EngineMetricNames

    init(factory: any MetricsFactory) {
        tokensAbsorbed = Counter(label: Name.tokensAbsorbed, factory: factory)
        stepBatchSize = Recorder(label: Name.stepBatchSize, aggregate: true, factory: factory)
        surprisal = Recorder(label: Name.surprisal, aggregate: true, factory: factory)
        streamsEvicted = Counter(label: Name.streamsEvicted, factory: factory)
        streamsExpired = Counter(label: Name.streamsExpired, factory: factory)
    }
}

/// The engine's metric names, which recurd gives help text and buckets.
public enum EngineMetricNames {
    /// `recurd_tokens_absorbed_total`.
    public static let tokensAbsorbed = "recurd_tokens_absorbed_total"
    /// `recurd_engine_step_batch_size`.
    public static let stepBatchSize = "recurd_engine_step_batch_size"
    /// `recurd_token_surprisal`, in bits (not suffixed `_bits`: promtool reads that as a
    /// non-base unit of bytes).
    public static let surprisal = "recurd_token_surprisal"
    /// `recurd_streams_evicted_total`.
    public static let streamsEvicted = "recurd_streams_evicted_total"
    /// `recurd_streams_expired_total`.
    public static let streamsExpired = "recurd_streams_expired_total"
}
