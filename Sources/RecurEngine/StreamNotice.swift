/// Unsolicited news about a stream, delivered to the clients that used it.
public struct StreamNotice: Sendable, Equatable {
    /// What happened to the stream.
    public enum Kind: String, Sendable {
        /// Dropped after `EngineOptions.idleTimeout` without activity.
        case expired
        /// Dropped to make room under `EngineOptions.maxResidentStreams`.
        case evicted
        /// Another client ended it.
        case ended
        /// Another client reset it.
        case reset
    }

    /// The stream concerned.
    public var stream: String
    /// What happened.
    public var kind: Kind
    /// A sentence for people (logs, `recur connect`).
    public var message: String

    /// Memberwise.
    public init(stream: String, kind: Kind, message: String) {
        self.stream = stream
        self.kind = kind
        self.message = message
    }
}
