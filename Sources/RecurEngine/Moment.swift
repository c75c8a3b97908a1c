import Foundation

/// A point in time read once and used for several decisions: the wall clock for what clients
/// see (`created`, `lastActivity`), the monotonic clock for what must not jump (expiry, rates).
struct Moment {
    /// Seconds since 1970.
    var wall: Double
    /// Seconds since an arbitrary start, never going backwards.
    var uptime: Double

    static func now() -> Moment {
        Moment(wall: Date().timeIntervalSince1970, uptime: ProcessInfo.processInfo.systemUptime)
    }
}
