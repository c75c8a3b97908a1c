import RecurEngine
import RecurServer

/// Each metric's help text and histogram buckets (docs/OBSERVABILITY.md lists the same).
enum MetricsHelp {
    static let text: [String: String] = [
        EngineMetricNames.tokensAbsorbed: "Tokens fed by clients and absorbed by their streams.",
        EngineMetricNames.stepBatchSize: "Rows (a token of one stream each) stepped together per engine step.",
        EngineMetricNames.surprisal: "Surprisal of each absorbed token under the prediction made before it, in bits (-log2 p).",
        EngineMetricNames.streamsEvicted: "Streams moved out of memory (to the state store, or dropped) to make room for another.",
        EngineMetricNames.streamsExpired: "Streams moved out of memory (to the state store, or dropped) after the idle timeout.",
        ServerMetricNames.feeds: "Feed requests executed over the socket, ended by a done reply or an error.",
        ServerMetricNames.errors: "Error replies sent, by error code.",
        ServerMetricNames.feedLatency: "Seconds from serving a feed request (its line read) to its done reply written.",
        ServerMetricNames.connectionsRefused: "Socket connections refused (connection limit reached, peer unknown).",
        ServerMetricNames.forwards: "Requests a cluster node forwarded to the node serving their stream.",
        ClusterMetricNames.keyGroups: "Key groups this cluster node holds a lease on.",
        ClusterMetricNames.handedOff: "Key groups this cluster node handed off to another (a join, its own graceful stop).",
        ClusterMetricNames.takenOver: "Key groups this cluster node took (free, or expired from a dead node).",
        ClusterMetricNames.lost: "Key groups whose lease this cluster node lost to another while it could not renew.",
        StoreMetricNames.commitLatency: "Seconds one state-store group commit took.",
        StoreMetricNames.writtenBytes: "Bytes of records written to the state store (token log, held text, checkpoints).",
        RecurdMetrics.Name.streamsResident: "Streams held in memory.",
        RecurdMetrics.Name.streamsStored: "Streams the state store holds, resident ones included (absent without --state-dir).",
        RecurdMetrics.Name.connectionsOpen: "Socket connections open.",
        RecurdMetrics.Name.reloads: "Model reloads (SIGHUP), by outcome: replaced or refused.",
        RecurdMetrics.Name.modelInfo: "The model being served, as labels; the value is always 1.",
        RecurdMetrics.Name.viewWatchers: "Live-view event streams (GET /events) attached to a stream now.",
    ]

    /// Powers of two from 1 to the engine's largest batch.
    static let batchBuckets: [Double] = (0...10).map { Double(1 << $0) }
    /// Bits: 0.5 to 16 (a byte model's uniform guess is 8 bits).
    static let surprisalBuckets: [Double] = [0.5, 1, 2, 3, 4, 6, 8, 10, 12, 16]
    /// Feed latency: 100 µs to 10 s.
    static let latencyBuckets: [Duration] = [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
                                             .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                             .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                             .seconds(1), .milliseconds(2500), .seconds(10)]
    /// Store commits: 50 µs to 5 s (an fsync on a slow disk takes tens of ms).
    static let commitBuckets: [Duration] = [.microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
                                            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                            .seconds(1), .seconds(5)]
    static let valueBuckets: [String: [Double]] = [
        EngineMetricNames.stepBatchSize: batchBuckets,
        EngineMetricNames.surprisal: surprisalBuckets,
    ]
    static let durationBuckets: [String: [Duration]] = [
        ServerMetricNames.feedLatency: latencyBuckets,
        StoreMetricNames.commitLatency: commitBuckets,
    ]
}
