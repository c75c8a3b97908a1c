import RecurEngine

/// The stable error codes of the protocol (docs/PROTOCOL.md). Clients branch on these, so
/// they never change meaning; new ones may be added.
public enum ErrorCode: String, Sendable, CaseIterable {
    /// The line is not one JSON object (or not valid UTF-8).
    case badJSON = "bad_json"
    /// "op" names no operation.
    case unknownOp = "unknown_op"
    /// A required member ("op", "text", "n", "into") is absent.
    case missingField = "missing_field"
    /// A member has the wrong type or a value outside its range, or the text cannot be tokenized.
    case badValue = "bad_value"
    /// The line is longer than the daemon's limit; the rest of it was skipped.
    case tooLong = "too_long"
    /// No stream has that name (never created, ended, expired or evicted).
    case unknownStream = "unknown_stream"
    /// A fork target that is already taken.
    case streamExists = "stream_exists"
    /// Too many requests are queued for the stream, or the connection limit is reached.
    case busy
    /// The stream belongs to another Unix user (and the caller is neither root nor an admin).
    case permissionDenied = "permission_denied"
    /// The caller's user has as many streams as `--max-streams-per-user` allows.
    case quotaExceeded = "quota_exceeded"
    /// The daemon is shutting down and takes no more work.
    case shuttingDown = "shutting_down"
    /// A cluster node does not serve the stream now (its key group is owned by another node,
    /// or moving) and could not forward the request; retry, here or at another node.
    case moved
    /// recurd runs (under systemd, keeping its socket) but could not load its model; the
    /// connection is closed. Retry later: it serves as soon as a good model is installed.
    case modelUnavailable = "model_unavailable"
    /// A failure inside the daemon; the request may be retried.
    case `internal`
}

extension ErrorCode {
    /// The code a client reads for an engine failure of `kind`.
    public init(_ kind: EngineError.Kind) {
        self = switch kind {
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
}

/// A request that cannot be served, as the client will read it: a code and a sentence.
public struct ProtocolError: Error, Equatable, CustomStringConvertible {
    /// One of `ErrorCode`'s raw values.
    public var code: String
    /// What was wrong, as a sentence the client's user can act on.
    public var message: String

    /// An error of one of the protocol's own codes.
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code.rawValue
        self.message = message
    }

    /// The engine's error, under the protocol's code for its kind.
    public init(_ error: EngineError) {
        code = ErrorCode(error.kind).rawValue
        message = error.description
    }

    /// `code: message`, for logs.
    public var description: String { "\(code): \(message)" }
}
