import Foundation

/// A token bucket per Unix user, shared by all of that user's connections: each request line
/// takes its length in bytes, the bucket refills at `bytesPerSecond` up to one second's worth,
/// and a line that overdraws it is served only after the debt is paid back. A user who sends
/// faster than the rate is slowed down (back-pressure: the connection stops being read while it
/// waits), never refused, and never slows other users.
final class ByteRateLimiter: Sendable {
    let bytesPerSecond: Double

    private struct Bucket {
        /// May go negative: the bytes owed.
        var tokens: Double
        /// Monotonic seconds of the last update.
        var updated: Double
    }

    private let buckets = Locked<[UInt32: Bucket]>([:])
    /// Beyond this many users' buckets, full ones (idle users) are forgotten.
    private static let pruneThreshold = 4096

    init(bytesPerSecond: Int) {
        precondition(bytesPerSecond >= 1, "bytesPerSecond \(bytesPerSecond) must be at least 1")
        self.bytesPerSecond = Double(bytesPerSecond)
    }

    /// Takes `bytes` from `uid`'s bucket at monotonic time `now`; returns the seconds the caller
    /// must wait before serving them (0 when the bucket had enough).
    func reserve(_ bytes: Int, for uid: UInt32, at now: Double = ProcessInfo.processInfo.systemUptime) -> Double {
        let rate = bytesPerSecond
        return buckets.withLock { all in
            if all.count > Self.pruneThreshold {
                all = all.filter { min(rate, $0.value.tokens + (now - $0.value.updated) * rate) < rate }
            }
            var bucket = all[uid] ?? Bucket(tokens: rate, updated: now)
            bucket.tokens = min(rate, bucket.tokens + max(0, now - bucket.updated) * rate)
            bucket.updated = now
            bucket.tokens -= Double(bytes)
            all[uid] = bucket
            return bucket.tokens >= 0 ? 0 : -bucket.tokens / rate
        }
    }
}
