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

    init(model: Model, options: EngineOptions, tokenLog: (any TokenLog)?) {
        options.check()
        self.model = model
        self.options = options
        self.tokenLog = tokenLog
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
            try checkAccess(to: record, by: caller)
            try checkQueue(of: record)
        } else {
            guard create else { throw .unknownStream(name) }
            record = try createStream(name, for: caller, at: now)
            job.createdStream = true
        }
        enqueue(job, on: record, at: now)
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
        guard let from = registry[source], from.alive else { throw .unknownStream(source) }
        try checkAccess(to: from, by: caller)
        guard registry[target] == nil else { throw .streamExists(target) }
        try checkQueue(of: from)
        let now = Moment.now()
        registry.touch(from, at: now)
        let into = try createStream(target, for: caller, at: now, keeping: from)
        enqueue(Job(kind: .forkBarrier, client: nil, completion: nil), on: into, at: now)
        registry.subscribe(client, to: into)
        let job = Job(kind: .fork(target: into), client: client, completion: completion)
        job.caller = caller
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
            throw .busy("stream \(EngineError.quoted(record.name)) already has \(limit) requests waiting; wait for their replies before sending more")
        }
    }

    /// Registers a new stream owned by `caller`, first evicting the least recently active idle
    /// one (not `kept`) if the resident bound is reached. Under the lock.
    private func createStream(_ name: String, for caller: Caller, at now: Moment,
                              keeping kept: StreamRecord? = nil) throws(EngineError) -> StreamRecord {
        if let limit = options.maxStreamsPerUser, !caller.exemptFromLimits, registry.count(ownedBy: caller.uid) >= limit {
            throw .quotaExceeded("uid \(caller.uid) already has \(limit) streams, the most one user may have; end some before creating more")
        }
        if registry.count >= options.maxResidentStreams {
            guard let victim = registry.leastRecentlyActiveIdle(except: kept) else {
                throw .busy("the engine holds its maximum of \(options.maxResidentStreams) streams and every one is busy; try again shortly")
            }
            let notice = StreamNotice(
                stream: victim.name, kind: .evicted,
                message: "stream \(EngineError.quoted(victim.name)) was evicted: the engine holds at most \(options.maxResidentStreams) streams and it was the least recently active idle one")
            pendingNotices.append((notice, victim.subscribers.sorted()))
            victim.alive = false
            registry.remove(victim)
            lock.broadcast()
        }
        let record = StreamRecord(name: name, owner: caller.uid, config: model.config, tokenizer: tokenizer, now: now)
        registry.insert(record)
        return record
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

    func info(_ name: String, client: ClientID?) throws(EngineError) -> StreamInfo {
        lock.lock()
        defer { lock.unlock() }
        try checkAccepting()
        guard let record = registry[name], record.alive else { throw .unknownStream(name) }
        try checkAccess(to: record, by: caller(of: client))
        return record.info()
    }

    func list(client: ClientID?) -> [StreamInfo] {
        lock.lock()
        defer { lock.unlock() }
        let caller = caller(of: client)
        return registry.streams.values.filter { $0.alive && $0.allows(caller) }.map { $0.info() }.sorted { $0.stream.utf8.lexicographicallyPrecedes($1.stream.utf8) }
    }

    func stats() -> EngineStats {
        lock.lock()
        defer { lock.unlock() }
        let uptime = phase == .idle ? 0 : ProcessInfo.processInfo.systemUptime - startUptime
        return EngineStats(streams: registry.streams.values.filter(\.alive).count, tokens: tokensAbsorbed,
                           tokensPerSecond: meter.rate(at: uptime), steps: stepsTaken,
                           meanBatch: stepsTaken > 0 ? Double(rowsStepped) / Double(stepsTaken) : 0,
                           uptime: uptime)
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
    }
}
