#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Unix-domain socket address for a filesystem path, for the calls that take a `sockaddr`
/// (bind, connect): the daemon's own socket and the clients of it (`recur connect`,
/// `recur-bench`).
public enum UnixSocketAddress {
    /// The longest path in bytes that fits `sun_path` with its terminating zero.
    public static var maxPathLength: Int { MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1 }

    /// Calls `body` with the address of `path` and its length; nil when the path is too long
    /// for a Unix socket (it would otherwise be cut short and name another file).
    public static func withAddress<T>(of path: String,
                                      _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T? {
        let bytes = Array(path.utf8)
        guard bytes.count <= maxPathLength else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
