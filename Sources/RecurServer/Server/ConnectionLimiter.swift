/// Counts open connections against the limit and hands out connection ids.
final class ConnectionLimiter: Sendable {
    let limit: Int
    private let state = Locked((open: 0, lastID: UInt64(0)))

    init(limit: Int) {
        precondition(limit >= 1, "connection limit \(limit) must be at least 1")
        self.limit = limit
    }

    /// A fresh connection id (1, 2, ...; 0 is the stdin pipeline's).
    func nextID() -> UInt64 {
        state.withLock { s in
            s.lastID += 1
            return s.lastID
        }
    }

    /// The last id handed out.
    var lastID: UInt64 { state.withLock { $0.lastID } }

    /// Continues numbering after `id` (connections taken over from the previous process keep
    /// theirs, and with them their private streams).
    func reserve(through id: UInt64) {
        state.withLock { s in s.lastID = max(s.lastID, id) }
    }

    /// Takes a slot if one is free; pair a `true` with `release()`.
    func admit() -> Bool {
        state.withLock { s in
            guard s.open < limit else { return false }
            s.open += 1
            return true
        }
    }

    func release() {
        state.withLock { s in
            precondition(s.open > 0, "released a connection slot that was never taken")
            s.open -= 1
        }
    }

    /// Connections open now.
    var open: Int { state.withLock { $0.open } }
}
