/// Everything that makes a stream what it is, copied out of the engine: enough to bring the
/// stream back, bit for bit, in another process running the same model.
///
/// Shapes: `state` (stateSize) in the `StateBatch` layout for one row (per layer h, then c for
/// LSTM, each H floats); `logProbs` (V), the log-softmax after the last absorbed token
/// (meaningless while `offset` is 0).
public struct StreamSnapshot: Sendable, Equatable {
    /// The stream's name.
    public var stream: String
    /// The model the state was computed with (`ModelFingerprint.model`).
    public var modelHash: UInt64
    /// The vocabulary the tokens belong to (`ModelFingerprint.vocabulary`).
    public var vocabularyHash: UInt64
    /// Tokens absorbed since creation or the last reset.
    public var offset: Int
    /// Tokens that came with a logprob.
    public var scoredTokens: Int
    /// Sum of -logprob over the scored tokens, in nats.
    public var lossSum: Double
    /// Seconds since 1970.
    public var created: Double
    /// Seconds since 1970.
    public var lastActivity: Double
    /// The Unix user that owns the stream, when ownership is enforced.
    public var owner: UInt32?
    /// (stateSize) floats.
    public var state: [Float]
    /// (V) floats.
    public var logProbs: [Float]
    /// Bytes the incremental tokenizer held back (an unfinished UTF-8 sequence or word).
    public var pendingText: [UInt8]

    /// Memberwise.
    public init(stream: String, modelHash: UInt64, vocabularyHash: UInt64, offset: Int, scoredTokens: Int,
                lossSum: Double, created: Double, lastActivity: Double, owner: UInt32?, state: [Float],
                logProbs: [Float], pendingText: [UInt8]) {
        self.stream = stream
        self.modelHash = modelHash
        self.vocabularyHash = vocabularyHash
        self.offset = offset
        self.scoredTokens = scoredTokens
        self.lossSum = lossSum
        self.created = created
        self.lastActivity = lastActivity
        self.owner = owner
        self.state = state
        self.logProbs = logProbs
        self.pendingText = pendingText
    }
}

/// A stream as the store hands it back: a snapshot to start from, then tokens to absorb on top
/// of it (the logged tail after the checkpoint, or the whole history when the model changed).
public struct StoredStream: Sendable, Equatable {
    /// The starting point; offset 0 starts from a new stream's zero state.
    public var snapshot: StreamSnapshot
    /// Tokens to absorb after the snapshot, in order (not acknowledged again: no events).
    public var replay: [Int32]
    /// The tokenizer's held bytes once `replay` is absorbed.
    public var pendingText: [UInt8]
    /// Set when the stored state could not be used (saved under another model and the log no
    /// longer reaches back to the stream's start): the stream comes back empty and its clients
    /// get a `reset` notice with this sentence.
    public var resetReason: String?

    /// Memberwise.
    public init(snapshot: StreamSnapshot, replay: [Int32] = [], pendingText: [UInt8], resetReason: String? = nil) {
        self.snapshot = snapshot
        self.replay = replay
        self.pendingText = pendingText
        self.resetReason = resetReason
    }
}
