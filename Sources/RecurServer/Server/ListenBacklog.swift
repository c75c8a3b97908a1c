#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The listen backlog: how many connections may wait to be accepted. Every connection the
/// daemon may serve can arrive at the same instant (a fleet of clients started together), so
/// the backlog is the connection limit; the kernel caps it at `net.core.somaxconn`
/// (/proc/sys/net/core/somaxconn), which the daemon reports when it is lower. A Unix socket
/// whose backlog is full refuses a non-blocking connect with EAGAIN, which clients see as a
/// failed or reset connection.
enum ListenBacklog {
    /// The kernel's cap on any listen backlog; nil when it cannot be read (not Linux).
    static func systemMaximum() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/core/somaxconn", encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The backlog to ask for with `limit` connections: the limit, and at least SOMAXCONN.
    static func backlog(forConnectionLimit limit: Int) -> Int32 {
        Int32(clamping: max(limit, Int(SOMAXCONN)))
    }

    /// Sets the backlog of a socket that already listens (one given by systemd or the previous
    /// process: listen() again only changes the backlog). Returns whether it worked.
    static func apply(_ backlog: Int32, to descriptor: Int32) -> Bool {
        listen(descriptor, backlog) == 0
    }
}
