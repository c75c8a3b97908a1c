/// A listening Unix socket with the socket server's file life cycle (`SocketPath`): a file at
/// the path is replaced only when it is a dead socket of this user's, and removed at the end only
/// while it is still the one bound. For other servers of the daemon (recurd's HTTP surface).
public struct ListeningUnixSocket: Sendable {
    private let bound: SocketPath.Bound

    /// The listening descriptor (close-on-exec); serve on it, then call `remove()`.
    public var descriptor: Int32 { bound.descriptor }

    /// Binds and listens at `path`.
    /// - Throws: `ConfigurationError` naming the path and the reason (a live server there, a
    ///   file that is not a socket, another user's socket, the system's error).
    public init(path: String, backlog: Int32 = 256) throws(ConfigurationError) {
        try SocketPath.prepare(path)
        bound = try SocketPath.bindListening(path, backlog: backlog)
    }

    /// Removes the socket file if it is still the one bound here (the descriptor is not closed).
    public func remove() {
        SocketPath.remove(bound)
    }
}
