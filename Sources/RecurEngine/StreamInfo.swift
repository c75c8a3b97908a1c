/// A snapshot of one stream, as the `info` and `list` requests report it.
public struct StreamInfo: Sendable, Equatable {
    /// The stream's name.
    public var stream: String
    /// Tokens absorbed.
    public var offset: Int
    /// Tokens with a logprob (offset - 1 once offset ≥ 1).
    public var scoredTokens: Int
    /// Mean -logprob (nats/token) over scored tokens; nil if none.
    public var meanLoss: Double?
    /// When the stream was created (or re-created after an end), in seconds since 1970.
    public var created: Double
    /// When a request last touched it, in seconds since 1970.
    public var lastActivity: Double
    /// Bytes held by the incremental tokenizer (an unfinished UTF-8 sequence or word).
    public var pendingText: Int
    /// The Unix uid of the user whose request created the stream.
    public var owner: UInt32

    /// Memberwise, for tests and for servers that relay infos.
    public init(stream: String, offset: Int, scoredTokens: Int, meanLoss: Double?, created: Double,
                lastActivity: Double, pendingText: Int, owner: UInt32) {
        self.stream = stream
        self.offset = offset
        self.scoredTokens = scoredTokens
        self.meanLoss = meanLoss
        self.created = created
        self.lastActivity = lastActivity
        self.pendingText = pendingText
        self.owner = owner
    }
}
