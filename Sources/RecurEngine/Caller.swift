#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who makes a request: the Unix user behind it and what that user may do. A stream belongs to
/// the user whose request created it; only that user, or a caller that `actsOnAll`, may feed,
/// predict from, inspect, fork, reset or end it (`EngineError.permissionDenied` otherwise).
public struct Caller: Sendable, Hashable, CustomStringConvertible {
    /// The Unix user id (for a socket client, the peer's SO_PEERCRED uid).
    public var uid: UInt32
    /// Root or a member of the daemon's admin group: `list` shows every stream and every
    /// stream may be used.
    public var actsOnAll: Bool
    /// Not held to the per-user limits (`EngineOptions.maxStreamsPerUser`, the server's byte rate).
    public var exemptFromLimits: Bool

    /// A caller; by default an ordinary user, held to the limits.
    public init(uid: UInt32, actsOnAll: Bool = false, exemptFromLimits: Bool = false) {
        self.uid = uid
        self.actsOnAll = actsOnAll
        self.exemptFromLimits = exemptFromLimits
    }

    /// The daemon's own process (the stdin pipeline, in-process users of the engine): it owns
    /// what it creates under the daemon's effective uid and may not use other users' streams,
    /// but is not held to per-user limits (it is the operator's own input).
    public static let process = Caller(uid: UInt32(geteuid()), actsOnAll: false, exemptFromLimits: true)

    /// `uid N`, with the privileges that apply.
    public var description: String {
        var text = "uid \(uid)"
        if actsOnAll { text += " (admin)" } else if exemptFromLimits { text += " (unlimited)" }
        return text
    }
}
