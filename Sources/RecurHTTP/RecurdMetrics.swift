import CoreMetrics
import Prometheus
import RecurCore
import RecurEngine
import RecurServer
import Synchronization

/// recurd's metrics: the one `PrometheusCollectorRegistry` of the process, the factory the
/// engine, server and store record into (pass `factory` down), and what is read at a scrape or
/// at a reload rather than where it happens (streams resident and stored, connections open,
/// the model).
public final class RecurdMetrics: Sendable {
    /// The registry `GET /metrics` shows.
    public let registry: PrometheusCollectorRegistry
    /// The swift-metrics factory onto `registry`, with help text and buckets.
    public let factory: any MetricsFactory
    private let modelInfo = Mutex<CoreMetrics.Gauge?>(nil)

    /// Names of the metrics recorded here.
    public enum Name {
        /// `recurd_streams_resident`.
        public static let streamsResident = "recurd_streams_resident"
        /// `recurd_streams_stored`.
        public static let streamsStored = "recurd_streams_stored"
        /// `recurd_connections_open`.
        public static let connectionsOpen = "recurd_connections_open"
        /// `recurd_model_reloads_total`, by `outcome`.
        public static let reloads = "recurd_model_reloads_total"
        /// `recurd_model_info`.
        public static let modelInfo = "recurd_model_info"
        /// `recurd_view_watchers`.
        public static let viewWatchers = "recurd_view_watchers"
    }

    /// A new registry and its factory.
    public init() {
        registry = PrometheusCollectorRegistry()
        factory = DescribedPrometheusFactory(registry: registry)
        // Present from the start, at 0, so that rate() and alerts see them before the first event.
        for outcome in ["replaced", "refused"] {
            _ = CoreMetrics.Counter(label: Name.reloads, dimensions: [("outcome", outcome)], factory: factory)
        }
        watching(0)
    }

    /// Sets `recurd_view_watchers`: live-view event streams attached now.
    public func watching(_ count: Int) {
        CoreMetrics.Gauge(label: Name.viewWatchers, factory: factory).record(count)
    }

    /// Sets `recurd_model_info` to 1 with `model`'s labels, removing the previous model's series.
    public func serving(_ model: Model) {
        let config = model.config
        let labels = [("hash", ModelFingerprint(of: model).modelHex), ("cell", config.cell.rawValue),
                      ("layers", "\(config.layers)"), ("hidden_size", "\(config.hiddenSize)"),
                      ("vocabulary_size", "\(config.vocabularySize)")]
        let gauge = CoreMetrics.Gauge(label: Name.modelInfo, dimensions: labels, factory: factory)
        gauge.record(1)
        let previous = modelInfo.withLock { current in
            defer { current = gauge }
            return current
        }
        if let previous, previous.dimensions.map({ "\($0)=\($1)" }) != labels.map({ "\($0)=\($1)" }) { previous.destroy() }
    }

    /// Counts a reload by its outcome; a replaced model's labels go to `recurd_model_info`.
    public func reloaded(_ outcome: ReloadOutcome, daemon: DaemonHandle) {
        switch outcome {
        case .replaced:
            CoreMetrics.Counter(label: Name.reloads, dimensions: [("outcome", "replaced")], factory: factory).increment()
            serving(daemon.engine.model)
        case .refused:
            CoreMetrics.Counter(label: Name.reloads, dimensions: [("outcome", "refused")], factory: factory).increment()
        }
    }

    /// The exposition in Prometheus text format, after reading the gauges kept elsewhere.
    public func exposition(of daemon: DaemonHandle) async -> [UInt8] {
        let stats = await daemon.engine.stats()
        CoreMetrics.Gauge(label: Name.streamsResident, factory: factory).record(stats.streams)
        if let stored = stats.storedStreams { CoreMetrics.Gauge(label: Name.streamsStored, factory: factory).record(stored) }
        CoreMetrics.Gauge(label: Name.connectionsOpen, factory: factory).record(daemon.openConnections)
        return registry.emitToBuffer()
    }
}
