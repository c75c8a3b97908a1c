import RecurCore

/// Everything a request to the engine can fail with. Each case carries what the client needs
/// to act; `description` is the sentence to show, `kind` the case without its sentence. The
/// engine knows no wire format: the server maps a kind to its protocol's error code.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    /// No stream has this name (never created, ended, expired or evicted). Carries the name.
    case unknownStream(String)
    /// A fork's target name is already taken. Carries the name.
    case streamExists(String)
    /// Too many jobs are queued on the stream, or no stream can be evicted to make room.
    /// Carries the sentence.
    case busy(String)
    /// A bad k, n, temperature, seed, stream name, token id or untokenizable text. Carries the
    /// sentence, which names the offending value (for text: the character and its offset).
    case badValue(String)
    /// The stream belongs to another Unix user and the caller is neither root nor an admin.
    /// Carries the sentence.
    case permissionDenied(String)
    /// The caller's user already has as many streams as `EngineOptions.maxStreamsPerUser`
    /// allows. Carries the sentence.
    case quotaExceeded(String)
    /// The engine is stopping or stopped; nothing more will be done.
    case shuttingDown
    /// This process does not serve the stream now: a cluster node asked for a stream whose key
    /// group another node owns, or one moving between nodes. Carries the sentence; retry (a
    /// node forwards to the owner when it knows it).
    case moved(String)
    /// The engine itself failed (today: the token log refused an append). Carries the sentence.
    case `internal`(String)

    /// What kind of failure this is, without its sentence.
    public enum Kind: Sendable, Hashable, CaseIterable {
        case unknownStream, streamExists, busy, badValue, permissionDenied, quotaExceeded, shuttingDown, moved, `internal`
    }

    /// The case, without the sentence it carries.
    public var kind: Kind {
        switch self {
        case .unknownStream: .unknownStream
        case .streamExists: .streamExists
        case .busy: .busy
        case .badValue: .badValue
        case .permissionDenied: .permissionDenied
        case .quotaExceeded: .quotaExceeded
        case .shuttingDown: .shuttingDown
        case .moved: .moved
        case .internal: .internal
        }
    }

    /// The sentence to show the client: what went wrong and what to do.
    public var description: String {
        switch self {
        case .unknownStream(let name):
            "there is no stream named \(EngineError.quoted(name)) (it was never created, or it ended, expired or was evicted)"
        case .streamExists(let name):
            "a stream named \(EngineError.quoted(name)) already exists; fork into a new name"
        case .busy(let message), .badValue(let message), .internal(let message),
             .permissionDenied(let message), .quotaExceeded(let message), .moved(let message):
            message
        case .shuttingDown:
            "the engine is shutting down and accepts no more work"
        }
    }

    /// A stream name in quotes, control, separator and bidirectional characters escaped, so a
    /// message is always one line that reads as written.
    static func quoted(_ name: String) -> String { "'" + name.escapingDisplayControls + "'" }
}
