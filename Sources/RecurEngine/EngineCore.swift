import Foundation
import RecurCore

/// Everything behind `StreamEngine`: the registry and queues under one lock, and the stepping
/// thread's buffers. See docs/ENGINE.md for the threading rules.
///
/// Lock discipline: fields marked (lock) are touched only while holding `lock`; fields marked
/// (engine thread) only by the stepping thread. Completions and notices are always delivered
/// with the lock released.
final class EngineCore: @unchecked Sendable {
    enum Phase { case idle, running, stopping, stopped }

    /// (lock) Swapped only by the engine thread between steps (`replaceModel`).
    var model: Model
    let options: EngineOptions
    let tokenizer: Tokenizer
    let tokenLog: (any TokenLog)?
    /// The state store: token log (when it logs), checkpoints, evicted streams.
    let store: (any StreamStore)?
    /// (lock) The serving model's hashes, which checkpoints carry.
    var fingerprint: ModelFingerprint
    /// V and the floats of one stream's state.
    let vocabularySize: Int
    let stateSize: Int

    /// Guards every (lock) field; its condition wakes the engine thread and `shutdown`.
    let lock = NSCondition()
    /// (lock)
    var phase = Phase.idle
    var registry = StreamRegistry()
    /// (lock) Streams whose head job the engine thread must look at, each once.
    var ready: [StreamRecord] = []
    /// (lock) Notices waiting to be delivered by the engine thread.
    var pendingNotices: [(StreamNotice, [ClientID])] = []
    var noticeHandler: (@Sendable (StreamNotice, [ClientID]) -> Void)?
    /// (lock) Who each identified client is; a client never identified is `Caller.process`.
    var callers: [ClientID: Caller] = [:]
    /// (lock) Counters for `stats`.
    var startUptime: Double = 0
    var tokensAbsorbed = 0
    /// (lock) Subscriptions of handed-over connections to streams still in the store, applied
    /// when each is restored.
    var deferredSubscriptions: [String: Set<ClientID>] = [:]
    /// (lock) Streams moved to the store (eviction, expiry) and brought back.
    var streamsStored = 0
    var streamsRestored = 0
    var tokensReplayed = 0
    var stepsTaken = 0
    var rowsStepped = 0
    var meter = ThroughputMeter()
    /// (lock) The stepping thread, for `shutdown` called on it.
    var enginePThread: pthread_t?

    /// (engine thread) Streams whose head job takes a row in each step, in round-robin order.
    var active: [StreamRecord] = []
    var rotation = 0
    /// (engine thread; swapped under the lock between steps)
    var stepper: Stepper
    /// (lock) Heartbeats, a model swap, the test-only hang.
    var control = EngineControl()
    /// (maxBatch rows): the states of the rows being stepped, gathered from their streams.
    let batch: StateBatch
    /// (maxBatch): the token of each row.
    let batchTokens: UnsafeMutableBufferPointer<Int32>
    var rows: [Row] = []

    /// One row of a step: which stream (and job) it belongs to, where its state lives.
    struct Row {
        let record: StreamRecord
        let job: Job
        /// (stateSize) The stream's state, or a prediction's private copy.
        let state: UnsafeMutablePointer<Float>
    }

    init(model: Model, options: EngineOptions, tokenLog: (any TokenLog)?, store: (any StreamStore)?) {
        options.check()
        precondition(tokenLog == nil || store == nil, "give an engine a token log or a store, not both")
        self.model = model
        self.options = options
        self.tokenLog = tokenLog
        self.store = store
        // Hashing reads every parameter; only a store needs it.
        fingerprint = store == nil ? ModelFingerprint(model: 0, vocabulary: 0) : ModelFingerprint(of: model)
        tokenizer = Tokenizer(model.vocabulary)
        vocabularySize = model.config.vocabularySize
        stateSize = model.config.stateSize
        stepper = Stepper(model: model, maxBatch: options.maxBatch)
        batch = StateBatch(config: model.config, batch: options.maxBatch)
        batchTokens = .allocate(capacity: options.maxBatch)
        batchTokens.initialize(repeating: 0)
        rows.reserveCapacity(options.maxBatch)
    }

    deinit { batchTokens.deallocate() }

    // MARK: Submission (any thread)

    /// Queues `job` on `name`, creating the stream if `create` (feeds), else requiring it.
    func submit(_ job: Job, to name: String, create: Bool) throws(EngineError) {
        lock.lock()
        defer { lock.unlock() }
        try checkAccepting()
        let now = Moment.now()
        let caller = caller(of: job.client)
        job.caller = caller
        let record: StreamRecord
        if let existing = registry[name] {
            record = existing
            if record.restored {
                try checkAccess(to: record, by: caller)
            } else {
                job.ownerUnchecked = true  // checked when the restore has named the owner
            }
            try checkQueue(of: record)
        } else if let stored = try restoreStream(name, for: caller, at: now) {
            record = stored
            job.ownerUnchecked = true
        } else {
            guard create else { throw .unknownStream(name) }
            record = try createStream(name, for: caller, at: now)
            job.createdStream = true
        }
        enqueue(job, on: record, at: now)
    }

    /// Registers a stream the store holds, with a `restore` job at the head of its queue; nil
    /// when the store has no such stream. Its owner is checked when the restore has run (the
    /// jobs queued behind it are checked against the stored owner then). Under the lock.
    private func restoreStream(_ name: String, for caller: Caller, at now: Moment,
                               keeping kept: StreamRecord? = nil) throws(EngineError) -> StreamRecord? {
        guard let store, store.contains(stream: name) else { return nil }
        let record = try createStream(name, for: caller, at: now, keeping: kept)
        record.restored = false
        enqueue(Job(kind: .restore, client: nil, completion: nil), on: record, at: now)
        return record
    }

    /// Who `client` is. Under the lock.
    func caller(of client: ClientID?) -> Caller {
        client.flatMap { callers[$0] } ?? .process
    }

    /// Queues a fork of `source` into the new stream `target`, whose queue waits for the copy.
    func submitFork(from source: String, into target: String, client: ClientID,
                    completion: @escaping JobCompletion) throws(EngineError) {
        lock.lock()
        defer { lock.unlock() }
        try checkAccepting()
        let caller = caller(of: client)
        let now = Moment.now()
        let resident = registry[source]
        guard resident?.alive ?? store?.contains(stream: source) ?? false else { throw .unknownStream(source) }
        if let resident, resident.restored { try checkAccess(to: resident, by: caller) }
        guard registry[target] == nil, store?.contains(stream: target) != true else { throw .streamExists(target) }
        // A stored source is registered only now that the fork is known to be acceptable.
        let from: StreamRecord
        if let resident {
            from = resident
        } else if let stored = try restoreStream(source, for: caller, at: now) {
            from = stored
        } else {
            throw .unknownStream(source)
        }
        try checkQueue(of: from)
        registry.touch(from, at: now)
        let into = try createStream(target, for: caller, at: now, keeping: from)
        enqueue(Job(kind: .forkBarrier, client: nil, completion: nil), on: into, at: now)
        registry.subscribe(client, to: into)
        let job = Job(kind: .fork(target: into), client: client, completion: completion)
        job.caller = caller
        job.ownerUnchecked = !from.restored
        enqueue(job, on: from, at: now)
    }

    private func checkAccepting() throws(EngineError) {
        guard phase == .idle || phase == .running else { throw .shuttingDown }
    }

    /// Only the stream's owner, root and the admin group may use it.
    func checkAccess(to record: StreamRecord, by caller: Caller) throws(EngineError) {
        guard record.allows(caller) else {
            throw .permissionDenied("stream \(EngineError.quoted(record.name)) belongs to another user (uid \(record.owner)); only its owner, root or a member of the admin group may use it")
        }
    }

    private func checkQueue(of record: StreamRecord) throws(EngineError) {
        let limit = options.maxQueuedJobsPerStream
        guard record.jobs.count < limit else {
            throw .busy("stream \(EngineError.quoted(record.name)) already has \(limit) request\(limit == 1 ? "" : "s") waiting; wait for their replies before sending more")
        }
    }

    /// Registers a new stream owned by `caller`, first evicting the least recently active idle
    /// one (not `kept`) if the resident bound is reached. Under the lock.
    private func createStream(_ name: String, for caller: Caller, at now: Moment,
                              keeping kept: StreamRecord? = nil) throws(EngineError) -> StreamRecord {
        if let limit = options.maxStreamsPerUser, !caller.exemptFromLimits, registry.count(ownedBy: caller.uid) >= limit {
            throw .quotaExceeded("uid \(caller.uid) already has \(limit) stream\(limit == 1 ? "" : "s"), the most one user may have; end \(limit == 1 ? "it" : "some") before creating more")
        }
        if registry.count >= options.maxResidentStreams {
            guard let victim = registry.leastRecentlyActiveIdle(except: kept) else {
                throw .busy("the engine holds its maximum of \(options.maxResidentStreams) streams and every one is busy; try again shortly")
            }
            if store != nil {
                moveToStore(victim)
                return insertStream(name, owner: caller.uid, at: now)
            }
            let notice = StreamNotice(
                stream: victim.name, kind: .evicted,
                message: "stream \(EngineError.quoted(victim.name)) was evicted: the engine holds at most \(options.maxResidentStreams) streams and it was the least recently active idle one")
            pendingNotices.append((notice, victim.subscribers.sorted()))
            victim.alive = false
            registry.remove(victim)
            lock.broadcast()
        }
        return insertStream(name, owner: caller.uid, at: now)
    }

    private func insertStream(_ name: String, owner: UInt32, at now: Moment) -> StreamRecord {
        let record = StreamRecord(name: name, owner: owner, config: model.config, tokenizer: tokenizer, now: now)
        registry.insert(record)
        return record
    }

    /// A new model serves from now on: checkpoints carry its hashes, and the store judges stored
    /// states by them. Under the lock.
    func useFingerprint(_ new: ModelFingerprint) {
        fingerprint = new
        store?.modelChanged(to: new)
    }

    /// Moves an idle stream (nothing queued) from memory to the store. Nothing is lost, so no
    /// client is told; its next request brings it back. Under the lock.
    func moveToStore(_ record: StreamRecord) {
        precondition(record.jobs.isEmpty && record.restored, "stream '\(record.name)' is busy and cannot be stored")
        if record.alive { store?.checkpoint(record.snapshot(fingerprint: fingerprint)) }
        record.alive = false
        registry.remove(record)
        streamsStored += 1
    }

    private func enqueue(_ job: Job, on record: StreamRecord, at now: Moment) {
        if let client = job.client { registry.subscribe(client, to: record) }
        record.jobs.append(job)
        registry.touch(record, at: now)
        if record.jobs.count == 1 { markReady(record) }
    }

    /// Asks the engine thread to look at the stream's head job. Under the lock.
    func markReady(_ record: StreamRecord) {
        guard !record.needsAdvance else { return }
        record.needsAdvance = true
        ready.append(record)
        lock.broadcast()
    }

    // MARK: Quick reads (any thread)

    /// The stream's info now, or nil when it must be restored from the store first (then
    /// `info` is queued as a job, and access is checked once the stored owner is known).
    func info(_ name: String, client: ClientID?) throws(EngineError) -> StreamInfo? {
        lock.lock()
        defer { lock.unlock() }
        try checkAccepting()
        if let record = registry[name] {
            guard record.restored else { return nil }
            guard record.alive else { throw .unknownStream(name) }
            try checkAccess(to: record, by: caller(of: client))
            return record.info()
        }
        guard store?.contains(stream: name) == true else { throw .unknownStream(name) }
        return nil
    }

    func list(client: ClientID?) -> [StreamInfo] {
        lock.lock()
        defer { lock.unlock() }
        let caller = caller(of: client)
        return registry.streams.values.filter { $0.alive && $0.restored && $0.allows(caller) }.map { $0.info() }.sorted { $0.stream.utf8.lexicographicallyPrecedes($1.stream.utf8) }
    }

    func stats() -> EngineStats {
        lock.lock()
        defer { lock.unlock() }
        let uptime = phase == .idle ? 0 : ProcessInfo.processInfo.systemUptime - startUptime
        var stats = EngineStats(streams: registry.streams.values.filter(\.alive).count, tokens: tokensAbsorbed,
                                tokensPerSecond: meter.rate(at: uptime), steps: stepsTaken,
                                meanBatch: stepsTaken > 0 ? Double(rowsStepped) / Double(stepsTaken) : 0,
                                uptime: uptime)
        if let store {
            stats.storedStreams = store.storedStreamCount
            stats.streamsMovedToStore = streamsStored
            stats.streamsRestored = streamsRestored
            stats.tokensReplayed = tokensReplayed
        }
        return stats
    }

    func identify(_ client: ClientID, as caller: Caller) {
        lock.lock()
        defer { lock.unlock() }
        callers[client] = caller
    }

    func disconnect(_ client: ClientID) {
        lock.lock()
        defer { lock.unlock() }
        callers[client] = nil
        registry.disconnect(client)
        if !deferredSubscriptions.isEmpty {
            for name in Array(deferredSubscriptions.keys) {
                deferredSubscriptions[name]?.remove(client)
                if deferredSubscriptions[name]?.isEmpty == true { deferredSubscriptions[name] = nil }
            }
        }
    }
}
