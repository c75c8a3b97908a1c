import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// Talks to the service manager through `$NOTIFY_SOCKET` (sd_notify(3)): readiness, status,
/// reloading, stopping, watchdog pings and the file descriptor store. Outside systemd (no
/// `NOTIFY_SOCKET`) every call does nothing and returns false, so callers need no special case.
public struct SystemdNotifier: Sendable {
    /// Whether a service manager listens (`NOTIFY_SOCKET` was set when this was made).
    public let isEnabled: Bool

    /// A notifier for this process's environment.
    public init() {
        isEnabled = getenv("NOTIFY_SOCKET") != nil
    }

    /// Sends newline-separated `KEY=VALUE` assignments, e.g. `["READY=1", "STATUS=serving"]`.
    /// Returns whether the manager received them (false outside systemd or when sending failed).
    @discardableResult
    public func notify(_ assignments: [String]) -> Bool {
        guard isEnabled else { return false }
        return sd_notify(0, assignments.joined(separator: "\n")) > 0
    }

    /// READY=1 with a status line.
    @discardableResult
    public func ready(status: String) -> Bool { notify(["READY=1", "STATUS=\(Self.oneLine(status))"]) }

    /// STATUS=..., shown by `systemctl status`.
    @discardableResult
    public func status(_ text: String) -> Bool { notify(["STATUS=\(Self.oneLine(text))"]) }

    /// RELOADING=1 with MONOTONIC_USEC= (which Type=notify-reload, systemd 253+, requires and
    /// older managers ignore).
    @discardableResult
    public func reloading(status: String) -> Bool {
        notify(["RELOADING=1", "MONOTONIC_USEC=\(Self.monotonicMicroseconds())", "STATUS=\(Self.oneLine(status))"])
    }

    /// STOPPING=1 with a status line.
    @discardableResult
    public func stopping(status: String) -> Bool { notify(["STOPPING=1", "STATUS=\(Self.oneLine(status))"]) }

    /// WATCHDOG=1: the service is alive. Send only after checking that it is.
    @discardableResult
    public func watchdogPing() -> Bool { notify(["WATCHDOG=1"]) }

    /// EXTEND_TIMEOUT_USEC=...: the current start, reload or stop needs `duration` more.
    @discardableResult
    public func extendTimeout(by duration: Duration) -> Bool {
        notify(["EXTEND_TIMEOUT_USEC=\(Self.microseconds(duration))"])
    }

    /// ERRNO=...: the errno-style reason the service is failing.
    @discardableResult
    public func errno(_ code: Int32) -> Bool { notify(["ERRNO=\(code)"]) }

    /// The watchdog interval systemd expects pings within (`WatchdogSec=`), or nil when the
    /// watchdog is off for this process.
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// Puts `descriptors` into the service's file descriptor store under `name` (FDSTORE=1,
    /// FDNAME=); systemd keeps them across a restart and passes them back like socket-activated
    /// ones (`ListenedDescriptors`). Needs `FileDescriptorStoreMax=` on the unit.
    @discardableResult
    public func store(_ descriptors: [Int32], name: String) -> Bool {
        precondition(FileDescriptorName.isValid(name), "invalid FDNAME '\(name)'")
        guard isEnabled, !descriptors.isEmpty else { return false }
        return descriptors.withUnsafeBufferPointer { fds in
            sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=\(name)", fds.baseAddress, UInt32(fds.count)) > 0
        }
    }

    /// Drops every descriptor stored under `name` (FDSTOREREMOVE=1).
    @discardableResult
    public func removeStored(name: String) -> Bool {
        precondition(FileDescriptorName.isValid(name), "invalid FDNAME '\(name)'")
        return notify(["FDSTOREREMOVE=1", "FDNAME=\(name)"])
    }

    private static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" ? " " : $0 })
    }

    static func microseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }

    static func monotonicMicroseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }
}

/// The rules systemd applies to FDNAME= (and to FileDescriptorName=): 1 to 255 printable ASCII
/// characters other than ':'.
public enum FileDescriptorName {
    /// Whether systemd accepts `name`.
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return (1...255).contains(bytes.count) && bytes.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") }
    }
}
