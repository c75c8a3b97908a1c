import RecurCore

/// The resident streams by name, in least-recently-active order, and which streams each client
/// subscribed to. Lives under the engine lock.
struct StreamRegistry {
    private(set) var streams: [String: StreamRecord] = [:]
    /// Least recently active first; every touch moves a stream to the tail.
    private var lruHead: StreamRecord?
    private var lruTail: StreamRecord?
    /// Names each client is subscribed to, so a disconnect does not scan every stream.
    private var byClient: [ClientID: Set<String>] = [:]
    /// Registered streams per owner uid, for the per-user limit.
    private var byOwner: [UInt32: Int] = [:]

    var count: Int { streams.count }

    subscript(name: String) -> StreamRecord? { streams[name] }

    /// Registered streams `uid` owns (dead ones still queued on included).
    func count(ownedBy uid: UInt32) -> Int { byOwner[uid] ?? 0 }

    /// Gives a registered stream to another owner (a feed re-creating it after an end).
    mutating func changeOwner(of record: StreamRecord, to uid: UInt32) {
        guard record.owner != uid else { return }
        if streams[record.name] === record {
            release(owner: record.owner)
            byOwner[uid, default: 0] += 1
        }
        record.owner = uid
    }

    private mutating func release(owner uid: UInt32) {
        let left = (byOwner[uid] ?? 0) - 1
        precondition(left >= 0, "uid \(uid) owned no stream to release")
        byOwner[uid] = left == 0 ? nil : left
    }

    /// Adds a new stream; the caller has made room (see `leastRecentlyActiveIdle`).
    mutating func insert(_ record: StreamRecord) {
        precondition(streams[record.name] == nil, "stream '\(record.name)' is already registered")
        streams[record.name] = record
        byOwner[record.owner, default: 0] += 1
        linkAtTail(record)
    }

    /// Removes a stream and its subscriptions; a record no longer registered is left alone.
    mutating func remove(_ record: StreamRecord) {
        guard streams[record.name] === record else { return }
        streams[record.name] = nil
        release(owner: record.owner)
        unlink(record)
        for client in record.subscribers { unsubscribe(client, from: record) }
        record.subscribers = []
    }

    /// Marks activity: updates the times and moves the stream to the most recent end.
    mutating func touch(_ record: StreamRecord, at now: Moment) {
        record.lastActivity = now.wall
        record.lastActivityUptime = now.uptime
        guard streams[record.name] === record, lruTail !== record else { return }
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

    /// The least recently active stream with nothing queued, other than `protected`.
    func leastRecentlyActiveIdle(except protected: StreamRecord? = nil) -> StreamRecord? {
        var r = lruHead
        while let record = r {
            if record.jobs.isEmpty, record !== protected { return record }
            r = record.lruNext
        }
        return nil
    }

    /// Streams with nothing queued whose last activity is before `cutoff` (monotonic seconds).
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
        }
        streams = [:]
        byClient = [:]
        byOwner = [:]
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
