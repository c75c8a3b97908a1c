import RecurCore

/// The registered streams by name (`Residency`: loading, resident, being stored, gone with
/// requests still queued), the resident ones in least-recently-active order, and which streams
/// each client subscribed to. Lives under the engine lock. Every change of a stream's residency
/// goes through `insert`, `admit`, `retire` and `remove`, which keep the counts: only resident
/// streams count against the resident bound (`count`) and their owner (`count(ownedBy:)`).
struct StreamRegistry {
    private(set) var streams: [String: StreamRecord] = [:]
    /// Least recently active first; every touch moves a stream to the tail. Resident streams only.
    private var lruHead: StreamRecord?
    private var lruTail: StreamRecord?
    /// Names each client is subscribed to, so a disconnect does not scan every stream.
    private var byClient: [ClientID: Set<String>] = [:]
    /// Resident streams per owner uid, for the per-user limit.
    private var byOwner: [UInt32: Int] = [:]
    /// Resident streams.
    private(set) var count = 0

    subscript(name: String) -> StreamRecord? { streams[name] }

    /// Resident streams `uid` owns.
    func count(ownedBy uid: UInt32) -> Int { byOwner[uid] ?? 0 }

    /// Registers a stream under its name: a new one (`.resident`, the caller has made room and
    /// checked the quota) or one about to be loaded from the store (`.loading`).
    mutating func insert(_ record: StreamRecord) {
        precondition(streams[record.name] == nil, "stream '\(record.name)' is already registered")
        switch record.residency {
        case .resident:
            streams[record.name] = record
            counted(record)
        case .loading:
            streams[record.name] = record
        case .storing, .gone:
            preconditionFailure("stream '\(record.name)' registered while \(record.residency)")
        }
    }

    /// Makes a registered stream that is not resident (loaded, taken back from the store,
    /// re-created after an end) resident, owned by `uid`. The caller has made room.
    mutating func admit(_ record: StreamRecord, owner uid: UInt32) {
        precondition(streams[record.name] === record, "stream '\(record.name)' admitted but not registered")
        precondition(record.residency != .resident, "stream '\(record.name)' admitted twice")
        record.owner = uid
        record.residency = .resident
        counted(record)
    }

    /// A resident stream stops counting: it is being stored (`.storing`) or it is gone (ended,
    /// with requests still queued). Its subscribers are dropped except `keeping`. A `.loading`
    /// stream may also become `.gone` (not loadable, or not found).
    mutating func retire(_ record: StreamRecord, to residency: Residency, keeping kept: Set<ClientID> = []) {
        precondition(streams[record.name] === record, "stream '\(record.name)' retired but not registered")
        switch (record.residency, residency) {
        case (.resident, .storing), (.resident, .gone):
            uncounted(record)
        case (.loading, .gone):
            break
        default:
            preconditionFailure("stream '\(record.name)' cannot go from \(record.residency) to \(residency)")
        }
        record.residency = residency
        for client in record.subscribers where !kept.contains(client) { unsubscribe(client, from: record) }
    }

    /// Removes a stream and its subscriptions; a record no longer registered is left alone.
    mutating func remove(_ record: StreamRecord) {
        guard streams[record.name] === record else { return }
        streams[record.name] = nil
        if record.residency == .resident { uncounted(record) }
        for client in record.subscribers { unsubscribe(client, from: record) }
        record.subscribers = []
        endWatches(of: record)
    }

    /// Ends the watches of a stream that leaves memory, saying why.
    private func endWatches(of record: StreamRecord) {
        let watchers = record.watchers
        record.watchers = []
        let reason = "stream \(EngineError.quoted(record.name)) left memory (it was ended, expired, evicted or moved to the state store)"
        for watcher in watchers { watcher.finishDetached(.streamGone(reason)) }
    }

    private mutating func counted(_ record: StreamRecord) {
        count += 1
        byOwner[record.owner, default: 0] += 1
        linkAtTail(record)
    }

    private mutating func uncounted(_ record: StreamRecord) {
        count -= 1
        let left = (byOwner[record.owner] ?? 0) - 1
        precondition(left >= 0 && count >= 0, "uid \(record.owner) owned no stream to release ('\(record.name)')")
        byOwner[record.owner] = left == 0 ? nil : left
        unlink(record)
    }

    /// Marks activity: updates the times and moves the stream to the most recent end.
    mutating func touch(_ record: StreamRecord, at now: Moment) {
        record.lastActivity = now.wall
        record.lastActivityUptime = now.uptime
        guard streams[record.name] === record, record.residency == .resident, lruTail !== record else { return }
        unlink(record)
        linkAtTail(record)
    }

    /// The names of the streams `client` is subscribed to.
    func subscriptions(of client: ClientID) -> Set<String> { byClient[client] ?? [] }

    mutating func subscribe(_ client: ClientID, to record: StreamRecord) {
        guard record.subscribers.insert(client).inserted else { return }
        byClient[client, default: []].insert(record.name)
    }

    mutating func unsubscribe(_ client: ClientID, from record: StreamRecord) {
        record.subscribers.remove(client)
        byClient[client]?.remove(record.name)
        if byClient[client]?.isEmpty == true { byClient[client] = nil }
    }

    /// Forgets every subscription of a client.
    mutating func disconnect(_ client: ClientID) {
        guard let names = byClient.removeValue(forKey: client) else { return }
        for name in names { streams[name]?.subscribers.remove(client) }
    }

    /// The least recently active resident stream with nothing queued, other than `protected`.
    func leastRecentlyActiveIdle(except protected: StreamRecord? = nil) -> StreamRecord? {
        var r = lruHead
        while let record = r {
            if record.jobs.isEmpty, record !== protected { return record }
            r = record.lruNext
        }
        return nil
    }

    /// Resident streams with nothing queued whose last activity is before `cutoff` (monotonic seconds).
    func idle(before cutoff: Double) -> [StreamRecord] {
        var found: [StreamRecord] = []
        var r = lruHead
        while let record = r, record.lastActivityUptime < cutoff {
            if record.jobs.isEmpty { found.append(record) }
            r = record.lruNext
        }
        return found
    }

    /// Drops everything (shutdown), breaking the list's links.
    mutating func removeAll() -> [StreamRecord] {
        let all = Array(streams.values)
        for record in all {
            record.lruNext = nil
            record.lruPrevious = nil
            for watcher in record.watchers { watcher.finishDetached(.streamGone("the daemon is stopping")) }
            record.watchers = []
        }
        streams = [:]
        byClient = [:]
        byOwner = [:]
        count = 0
        lruHead = nil
        lruTail = nil
        return all
    }

    private mutating func linkAtTail(_ record: StreamRecord) {
        record.lruPrevious = lruTail
        record.lruNext = nil
        if let tail = lruTail { tail.lruNext = record } else { lruHead = record }
        lruTail = record
    }

    private mutating func unlink(_ record: StreamRecord) {
        let previous = record.lruPrevious, next = record.lruNext
        if let previous { previous.lruNext = next } else if lruHead === record { lruHead = next }
        if let next { next.lruPrevious = previous } else if lruTail === record { lruTail = previous }
        record.lruPrevious = nil
        record.lruNext = nil
    }
}
