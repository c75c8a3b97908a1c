/// Tokens per second over the last ~10 s, from one-second buckets (no per-token allocation).
struct ThroughputMeter {
    private static let window = 10
    /// (window + 1): counts of the seconds `second[i]`.
    private var counts = [Int](repeating: 0, count: window + 1)
    private var seconds = [Int](repeating: -1, count: window + 1)

    /// Adds `n` tokens absorbed at `uptime` (seconds since the engine started).
    mutating func add(_ n: Int, at uptime: Double) {
        let s = Int(uptime)
        let i = s % counts.count
        if seconds[i] != s {
            seconds[i] = s
            counts[i] = 0
        }
        counts[i] += n
    }

    /// The rate over the last `window` seconds (fewer just after start).
    func rate(at uptime: Double) -> Double {
        let now = Int(uptime)
        let first = now - Self.window + 1
        var total = 0
        for i in counts.indices where seconds[i] >= first && seconds[i] <= now { total += counts[i] }
        let span = min(uptime, uptime - Double(first))
        return span > 0 ? Double(total) / span : 0
    }
}
