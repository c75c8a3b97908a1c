import CoreMetrics
import RecurCore

/// Limits and defaults of the engine (the daemon's flags map onto these).
public struct EngineOptions: Sendable {
    /// Streams stepped together at most: one matrix product per layer covers this many rows.
    public var maxBatch = 1024
    /// The weights' number format in the step's products (`Precision`; the state stays fp32,
    /// so streams carry over when it changes).
    public var precision: Precision = .fp32
    /// Fair admission of rows (docs/ENGINE.md, "Which rows a step takes"): the first
    /// `promptRows` rows of every job come before the rows of jobs that have run longer, so a
    /// short request finishes in about as many steps as it has tokens, whatever long feeds are
    /// in progress.
    public var promptRows = 64
    /// Rows of jobs within their first `promptRows` that one step takes at most, the jobs with
    /// the fewest rows taken first (a request that has just come goes ahead of a burst of
    /// requests already under way).
    public var promptRowsPerStep = 32
    /// While some job is within its first `promptRows` rows, at most this many rows of longer
    /// jobs (in turn) share its steps, which keeps those steps short; otherwise a step takes up
    /// to `maxBatch` rows.
    public var bulkRowsBesidePrompt = 32
    /// Top-k predictions per event when a request does not say.
    public var defaultTopK = 5
    /// Larger k → `EngineError.badValue` (k costs a sort per token and bytes per event).
    public var maxTopK = 64
    /// Largest n for predict; a larger one → `EngineError.badValue`.
    public var maxPredict = 10_000
    /// Beyond this, creating a stream evicts the least recently active idle one, with a notice.
    public var maxResidentStreams = 10_000
    /// Streams one Unix user may own at once (named and private); creating one more →
    /// `EngineError.quotaExceeded`. nil = no limit. Callers `exemptFromLimits` are not counted
    /// against it.
    public var maxStreamsPerUser: Int? = nil
    /// Where the engine's metrics go (tokens absorbed, step batch size, surprisal, evictions,
    /// expiries; docs/OBSERVABILITY.md); the default discards them.
    public var metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance
    /// Seconds without activity after which an idle stream is dropped, with a notice; nil = never.
    public var idleTimeout: Double? = 3600
    /// Streams that one of these clients uses never expire, however long they are idle
    /// (recurd's stdin pipeline: a stream lives as long as its input). Eviction still applies.
    public var clientsExemptFromExpiry: Set<ClientID> = []
    /// A feed's tokens are logged (when the store logs tokens) and stepped in segments of at most
    /// this many tokens, so a durable log never holds back more than one segment.
    public var maxTokensPerFeedJob = 256
    /// Jobs (requests) queued on one stream beyond this → `EngineError.busy`.
    public var maxQueuedJobsPerStream = 64
    /// With a store: a stream that absorbed this many tokens since its last checkpoint is
    /// checkpointed again, which bounds what recovery replays per stream.
    public var checkpointInterval = 4096
    /// Seconds between idle-expiry sweeps of the engine thread (small in tests).
    public var sweepInterval: Double = 1
    /// Turns of the stepping loop a caller may run itself when its request is the engine's
    /// only work (`recurd --inline-turns`): a request of up to this many minus one tokens is
    /// then served without a hand-off to the engine thread and back. 0 sends every request
    /// through the engine thread. docs/ENGINE.md, "Inline turns".
    public var inlineTurns = 5
    /// With a store: seconds after a move to the store failed (a full disk) before the sweep
    /// tries again to move the streams left over the bound, one first; once one is stored, the
    /// rest follow at the next sweep.
    public var storeRetryInterval: Double = 10

    /// The defaults above; set fields to change them.
    public init() {}

    /// Checks that every limit is usable; a violation is a programmer error.
    func check() {
        precondition(maxBatch >= 1, "maxBatch \(maxBatch) must be at least 1")
        precondition(promptRows >= 0, "promptRows \(promptRows) must not be negative")
        precondition(promptRowsPerStep >= 1, "promptRowsPerStep \(promptRowsPerStep) must be at least 1")
        precondition(bulkRowsBesidePrompt >= 1, "bulkRowsBesidePrompt \(bulkRowsBesidePrompt) must be at least 1")
        precondition(defaultTopK >= 0 && defaultTopK <= maxTopK, "defaultTopK \(defaultTopK) must be within 0...maxTopK \(maxTopK)")
        precondition(maxPredict >= 0, "maxPredict \(maxPredict) must not be negative")
        precondition(maxResidentStreams >= 1, "maxResidentStreams \(maxResidentStreams) must be at least 1")
        precondition(maxStreamsPerUser.map { $0 >= 1 } ?? true, "maxStreamsPerUser \(String(describing: maxStreamsPerUser)) must be at least 1 or nil")
        precondition(idleTimeout.map { $0 > 0 } ?? true, "idleTimeout \(String(describing: idleTimeout)) must be positive or nil")
        precondition(maxTokensPerFeedJob >= 1, "maxTokensPerFeedJob \(maxTokensPerFeedJob) must be at least 1")
        precondition(maxQueuedJobsPerStream >= 1, "maxQueuedJobsPerStream \(maxQueuedJobsPerStream) must be at least 1")
        precondition(checkpointInterval >= 1, "checkpointInterval \(checkpointInterval) must be at least 1")
        precondition(sweepInterval > 0, "sweepInterval \(sweepInterval) must be positive")
        precondition(inlineTurns >= 0, "inlineTurns \(inlineTurns) must be 0 or more")
        precondition(storeRetryInterval > 0, "storeRetryInterval \(storeRetryInterval) must be positive")
    }
}
