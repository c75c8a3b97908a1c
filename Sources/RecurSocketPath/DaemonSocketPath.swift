/// Where recurd's Unix socket is unless told otherwise, and how long a Unix socket path may be:
/// the one place both are written, for the daemon, its clients (`recur connect`, `recur view`)
/// and the benchmarks. This module depends on nothing but libc (`UnixSocketAddress` is here
/// too), so a client that only needs the path does not link the server.
public enum DaemonSocketPath {
    /// recurd's socket when neither `--socket` nor `$RECURD_SOCKET` names another.
    public static let defaultPath = "/tmp/recurd.sock"

    /// Bytes a Unix socket path may have: `sun_path` holds 104 bytes on macOS and 108 on Linux,
    /// the terminating NUL included; 103 works on both.
    public static let maximumBytes = 103

    /// Nil when `path` fits in a socket address, else the sentence saying by how much it does
    /// not (`what` names it: "the socket path", "--socket").
    public static func lengthProblem(_ path: String, named what: String = "the socket path") -> String? {
        let bytes = path.utf8.count
        guard bytes > maximumBytes else { return nil }
        return "\(what) '\(path)' is \(bytes) bytes long; Unix socket paths are limited to \(maximumBytes) (use a shorter directory, e.g. /run or /tmp)"
    }
}
