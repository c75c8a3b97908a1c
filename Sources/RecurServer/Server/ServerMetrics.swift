import CoreMetrics

/// The socket server's metrics (docs/OBSERVABILITY.md), made from the daemon's factory
/// (`EngineOptions.metricsFactory`); with none they go nowhere. Labels are bounded: an error
/// code, never a stream name or a uid.
struct ServerMetrics: Sendable {
    let factory: any MetricsFactory
    /// Feed requests executed, whether they end with a done reply or an error (a line that is
    /// not a valid feed request is an error only).
    let feeds: Counter
    /// Seconds from serving a feed request (its line read to the last byte) to its done reply
    /// written; feeds that end with an error are not timed.
    let feedLatency: Timer
    /// Connections refused: over --max-connections, or their peer unknown.
    let connectionsRefused: Counter
    /// Requests a cluster node forwarded to the node that serves their stream.
    let forwards: Counter

    typealias Name = ServerMetricNames

    init(factory: any MetricsFactory) {
        self.factory = factory
        feeds = Counter(label: Name.feeds, factory: factory)
        feedLatency = Timer(label: Name.feedLatency, factory: factory)
        connectionsRefused = Counter(label: Name.connectionsRefused, factory: factory)
        forwards = Counter(label: Name.forwards, factory: factory)
    }

    /// Records a feed's latency: from `start` (its line read) to now (its done reply written).
    func feedDone(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        feedLatency.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }

    /// Counts an error reply under its code (the protocol's and the engine's codes: a fixed set).
    func error(_ error: ProtocolError) {
        Counter(label: Name.errors, dimensions: [("code", error.code)], factory: factory).increment()
    }
}

/// The metric names, which recurd gives help text and buckets.
public enum ServerMetricNames {
    /// `recurd_feeds_total`.
    public static let feeds = "recurd_feeds_total"
    /// `recurd_errors_total`, by `code`.
    public static let errors = "recurd_errors_total"
    /// `recurd_feed_latency_seconds`.
    public static let feedLatency = "recurd_feed_latency_seconds"
    /// `recurd_connections_refused_total`.
    public static let connectionsRefused = "recurd_connections_refused_total"
    /// `recurd_forwarded_requests_total`.
    public static let forwards = "recurd_forwarded_requests_total"
}
