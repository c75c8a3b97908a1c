#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The socket file's life cycle: a stale file left by a daemon that died is removed before
/// binding, but a live daemon's socket is never taken over.
enum SocketPath {
    /// Makes `path` free to bind.
    /// - Throws: `ConfigurationError` when another process is listening there or the path is
    ///   something other than a socket.
    static func prepare(_ path: String) throws(ConfigurationError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ConfigurationError("'\(path)' exists and is not a socket; remove it or choose another socket path")
        }
        if isListening(path) {
            throw ConfigurationError("another process is already listening on '\(path)'; stop it or choose another socket path")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw ConfigurationError("cannot remove the stale socket '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// Whether a connection to the Unix socket at `path` is accepted.
    static func isListening(_ path: String) -> Bool {
        #if os(Linux)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return UnixSocketAddress.withAddress(of: path) { connect(fd, $0, $1) } == 0
    }

    /// A listening Unix stream socket bound at `path` (close-on-exec).
    /// - Throws: `ConfigurationError` with the system's reason when it cannot be created.
    static func bindListening(_ path: String, backlog: Int32) throws(ConfigurationError) -> Int32 {
        #if os(Linux)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw ConfigurationError("cannot create a socket: \(String(cString: strerror(errno)))") }
        guard let bound = UnixSocketAddress.withAddress(of: path, { bind(fd, $0, $1) }) else {
            close(fd)
            throw ConfigurationError("the socket path '\(path)' is too long")
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ConfigurationError("cannot listen on '\(path)': \(reason)")
        }
        return fd
    }

    /// Sets the permission bits of the socket file (who may connect).
    /// - Throws: `ConfigurationError` when chmod fails.
    static func setMode(_ mode: UInt32, of path: String) throws(ConfigurationError) {
        guard chmod(path, mode_t(mode)) == 0 else {
            throw ConfigurationError("cannot set the mode of the socket '\(path)' to \(String(mode, radix: 8)): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the socket file the server bound (on shutdown).
    static func remove(_ path: String) {
        var info = stat()
        if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
    }
}
