import RecurCore

/// One stream: its recurrent state, the log-probabilities it predicts for its next token, its
/// tokenizer, counters, subscribers and the FIFO of requests waiting on it.
///
/// Ownership: fields marked (lock) are read and written under the engine lock. The numeric
/// buffers are touched only by the engine thread (under the lock or not), which is the only
/// thread that runs jobs; nobody else reads them.
final class StreamRecord: @unchecked Sendable {
    let name: String
    /// (lock) The uid of the user whose request created the stream (or re-created it after an end).
    var owner: UInt32

    /// (lock) Loading, resident, being stored or gone; changed only by `StreamRegistry`.
    var residency: Residency
    /// (lock) Seconds since 1970.
    var created: Double
    /// (lock) Seconds since 1970, for `info`.
    var lastActivity: Double
    /// (lock) Monotonic seconds, for expiry and least-recently-used order.
    var lastActivityUptime: Double
    /// (lock) Tokens absorbed.
    var offset = 0
    /// (lock) Tokens that came with a logprob (all but the first since creation or reset).
    var scoredTokens = 0
    /// (lock) Sum of -logprob over scored tokens, in nats.
    var lossSum: Double = 0
    /// (lock) Clients told about expiry, eviction, and other clients' ends and resets.
    var subscribers: Set<ClientID> = []
    /// (lock) Observers of its events (`StreamEngine.watch`); ended when it leaves memory.
    var watchers: [StreamWatch] = []
    /// (lock) Requests in submission order; the first is the one running.
    var jobs: [Job] = []
    /// (lock) Waiting in the engine's ready list for its head job to be looked at.
    var needsAdvance = false
    /// (engine thread) In the engine's active list: its head job wants a row in the next step.
    var isActive = false
    /// (lock) How many times the stream was handed to the store (`Residency.storing`).
    var moves = 0
    /// (lock) The offset of the last checkpoint handed to the store.
    var checkpointedOffset = 0
    /// (lock) Neighbours in the registry's least-recently-active list.
    weak var lruPrevious: StreamRecord?
    var lruNext: StreamRecord?

    /// (lock) The stream's own incremental tokenizer.
    var encoder: IncrementalEncoder
    /// (engine thread) (stateSize): per layer h, then c for LSTM, each (H); `StateBatch` layout for B = 1.
    let state: FloatBuffer
    /// (engine thread) (V): log-softmax after the last absorbed token; meaningless while offset is 0.
    let logProbs: FloatBuffer

    init(name: String, owner: UInt32, residency: Residency, config: ModelConfig, tokenizer: Tokenizer, now: Moment) {
        self.name = name
        self.owner = owner
        self.residency = residency
        created = now.wall
        lastActivity = now.wall
        lastActivityUptime = now.uptime
        encoder = IncrementalEncoder(tokenizer: tokenizer)
        state = FloatBuffer(config.stateSize)
        logProbs = FloatBuffer(config.vocabularySize)
    }

    /// Back to a stream that has absorbed nothing (reset, end, re-creation). Engine thread only.
    func clear() {
        state.zero()
        offset = 0
        scoredTokens = 0
        lossSum = 0
        encoder = IncrementalEncoder(tokenizer: encoder.tokenizer)
    }

    /// Everything the store needs to bring the stream back. Engine thread, or under the lock
    /// when the stream has nothing queued (then nobody touches its buffers).
    func snapshot(fingerprint: ModelFingerprint) -> StreamSnapshot {
        StreamSnapshot(stream: name, modelHash: fingerprint.model, vocabularyHash: fingerprint.vocabulary,
                       offset: offset, scoredTokens: scoredTokens, lossSum: lossSum, created: created,
                       lastActivity: lastActivity, owner: owner, state: state.array,
                       logProbs: offset > 0 ? logProbs.array : [], pendingText: encoder.pendingBytes)
    }

    /// Takes over a stored stream's state and counters. Engine thread. The caller has checked
    /// the sizes.
    func apply(_ snapshot: StreamSnapshot) {
        offset = snapshot.offset
        scoredTokens = snapshot.scoredTokens
        lossSum = snapshot.lossSum
        created = snapshot.created
        lastActivity = snapshot.lastActivity
        state.zero()
        if snapshot.offset > 0 {
            state.p.update(from: snapshot.state, count: snapshot.state.count)
            logProbs.p.update(from: snapshot.logProbs, count: snapshot.logProbs.count)
        }
    }
    /// Whether `caller` may use the stream: its owner, or an admin.
    func allows(_ caller: Caller) -> Bool { Self.allows(caller, owner: owner) }

    /// Whether `caller` may use a stream owned by `owner`.
    static func allows(_ caller: Caller, owner: UInt32) -> Bool { caller.actsOnAll || caller.uid == owner }

    var isResident: Bool { residency == .resident }

    /// (lock) A restore heads the queue: the stream is loading, or absorbing its replayed tail.
    var isRestoring: Bool {
        if case .restore = jobs.first?.state { return true }
        return false
    }

    /// The snapshot `info` reports. Under the lock.
    func info() -> StreamInfo {
        StreamInfo(stream: name, offset: offset, scoredTokens: scoredTokens,
                   meanLoss: scoredTokens > 0 ? lossSum / Double(scoredTokens) : nil,
                   created: created, lastActivity: lastActivity, pendingText: encoder.pendingByteCount, owner: owner)
    }
}
