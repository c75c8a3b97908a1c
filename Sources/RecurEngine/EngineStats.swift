/// Counters of the whole engine, as the `stats` request reports them.
public struct EngineStats: Sendable, Equatable {
    /// Resident streams.
    public var streams: Int
    /// Tokens absorbed since start (feeds only: neither predictions nor tokens replayed to
    /// restore a stream from the store, which were counted when they were fed).
    public var tokens: Int
    /// Tokens absorbed per second over the last ~10 s.
    public var tokensPerSecond: Double
    /// Batched steps taken (one matrix product per layer each).
    public var steps: Int
    /// Of `steps`, those a caller took itself because its request was the engine's only work
    /// (docs/ENGINE.md, "Inline turns").
    public var stepsInline = 0
    /// Mean rows per step (absorbed tokens and predicted tokens alike).
    public var meanBatch: Double
    /// Seconds since `start()`.
    public var uptime: Double
    /// With a store: streams it holds (in memory or not), and streams moved to it from memory
    /// (eviction, expiry) and brought back since start. nil without a store.
    public var storedStreams: Int? = nil
    public var streamsMovedToStore = 0
    public var streamsRestored = 0
    /// Streams dropped from memory without a checkpoint because another process serves them
    /// now (a cluster node that lost a key group's lease), since start.
    public var streamsReleased = 0
    /// With a store: resident streams beyond `EngineOptions.maxResidentStreams`, kept in memory
    /// because the store could not take them (a full disk), and such failed moves since start.
    public var streamsOverBound = 0
    public var failedMovesToStore = 0
    /// With a store: logged tokens stepped again to restore streams since start.
    public var tokensReplayed = 0

    /// Memberwise, for tests and for servers that relay stats.
    public init(streams: Int, tokens: Int, tokensPerSecond: Double, steps: Int, meanBatch: Double, uptime: Double) {
        self.streams = streams
        self.tokens = tokens
        self.tokensPerSecond = tokensPerSecond
        self.steps = steps
        self.meanBatch = meanBatch
        self.uptime = uptime
    }
}
