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
        /// The state store could not take it when it was to leave memory (eviction or expiry),
        /// so it stays in memory, over `EngineOptions.maxResidentStreams`; nothing is lost. Sent
        /// to no client: the server logs it.
        case notStored = "not_stored"
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
