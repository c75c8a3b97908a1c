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
    /// Counters and histograms, recorded per step (`EngineMetrics`).
    let metrics: EngineMetrics
    let tokenizer: Tokenizer
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
    /// (lock) Streams moved to the store (eviction, expiry) and brought back, and moves the
    /// store could not take (the stream stayed in memory).
    var streamsStored = 0
    var streamsReleased = 0
    var failedMovesToStore = 0
    /// (lock) Whether the store's last answer to a move was a failure, and the uptime before
    /// which the sweep does not try again (`relieve`).
    var storeFailing = false
    var storeRetryUptime: Double = 0
    var streamsRestored = 0
    var tokensReplayed = 0
    var stepsTaken = 0
    var rowsStepped = 0
    var meter = ThroughputMeter()
    /// (lock) The stepping thread, for `shutdown` called on it.
    var enginePThread: pthread_t?

    /// Who is in a turn of the stepping loop: one thread at a time (docs/ENGINE.md, "Inline turns").
    enum Turner {
        case nobody
        /// The engine thread; no caller turns inline meanwhile.
        case engineThread
        /// A caller (`claimInline`, `turnInline`); the engine thread does not turn meanwhile.
        case caller
    }
    /// (lock)
    var turner = Turner.nobody
    /// (lock) Steps taken in inline turns, for `stats`.
    var stepsInline = 0
    /// (lock) When the next idle-expiry sweep is due (uptime).
    var nextSweep: Double = 0
    /// (lock) Streams to let go of (`release`), processed by the sweep until none is left.
    var releases: [Release] = []
    /// (turning thread) Scratch of `turn`: completions and notices to deliver, streams to
    /// advance, control callbacks.
    var turnFinished: [Finished] = []
    var turnNotices: [(StreamNotice, [ClientID])] = []
    var turnAdvancing: [StreamRecord] = []
    var turnCallbacks: [@Sendable () -> Void] = []
    /// (engine thread) Streams whose head job wants a row in the next step; `rotation` is where
    /// the next step's turn starts when not all of them fit (`selectRows`).
    var active: [StreamRecord] = []
    var rotation = 0
    /// (engine thread) Scratch of `selectRows`: indices in `active` of the prompt rows it takes.
    var promptIndices: [Int] = []
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
        /// The stream's head job, whose run the row steps.
        let job: Job
        let run: StepRun
        /// (stateSize) The stream's state, or a prediction's private copy.
        let state: UnsafeMutablePointer<Float>
        /// The stream's watchers when the row was taken (feeds only; usually none).
        var watchers: [StreamWatch] = []
    }

    init(model: Model, options: EngineOptions, store: (any StreamStore)?) {
        options.check()
        self.model = model
        self.options = options
        self.store = store
        metrics = EngineMetrics(factory: options.metricsFactory)
        // Hashing reads every parameter; only a store needs it.
        fingerprint = store == nil ? ModelFingerprint(model: 0, vocabulary: 0) : ModelFingerprint(of: model)
        tokenizer = Tokenizer(model.vocabulary)
        vocabularySize = model.config.vocabularySize
        stateSize = model.config.stateSize
        stepper = Stepper(model: model, maxBatch: options.maxBatch, precision: options.precision)
        batch = StateBatch(config: model.config, batch: options.maxBatch)
        batchTokens = .allocate(capacity: options.maxBatch)
        batchTokens.initialize(repeating: 0)
        rows.reserveCapacity(options.maxBatch)
    }

    deinit { batchTokens.deallocate() }

    // MARK: Submission (any thread)

    /// Queues `job` on `name`, creating the stream if `create` (feeds), else requiring it.
    /// A request on a resident stream (or one being stored) is checked for access before
    /// anything changes; one on a stream in the store waits for the load, which checks it
    /// before it is subscribed or counts against anyone.
    /// With `inline`, returns whether the caller is to run the engine's turns itself
    /// (`claimInline`, then `turnInline`).
    @discardableResult
    func submit(_ job: Job, to name: String, create: Bool, inline: Bool = false) throws(EngineError) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        try checkAccepting()
        try checkServed(name)
        let now = Moment.now()
        job.caller = caller(of: job.client)
        if let record = registry[name] {
            switch record.residency {
            case .resident:
                try checkAccess(to: record, by: job.caller)
                try checkQueue(of: record)
            case .storing:
                try checkAccess(to: record, by: job.caller)
                try takeBack(record)
            case .loading, .gone:
                try checkQueue(of: record)
                job.access = .unchecked  // checked once the owner is known (the load, or a re-creating feed)
            }
            let claimed = inline && claimInline(for: record)
            enqueue(job, on: record, at: now)
            return claimed
        } else if let store, store.contains(stream: name) {
            job.access = .unchecked
            enqueue(job, on: startLoading(name, for: job.caller, at: now), at: now)
            return false
        } else {
            guard create, case .feed(.waiting(let input, _)) = job.state else { throw .unknownStream(name) }
            let record = try createStream(name, for: job.caller, at: now)
            job.enter(.feed(.waiting(input, createdStream: true)))
            let claimed = inline && claimInline(for: record)
            enqueue(job, on: record, at: now)
            return claimed
        }
    }

    /// Registers a stream the store holds as `.loading`, with a `restore` job at the head of
    /// its queue. It counts against nobody and nothing is subscribed to it until the load has
    /// named its owner. Under the lock.
    private func startLoading(_ name: String, for caller: Caller, at now: Moment) -> StreamRecord {
        let record = StreamRecord(name: name, owner: caller.uid, residency: .loading, config: model.config,
                                  tokenizer: tokenizer, now: now)
        registry.insert(record)
        enqueue(Job(.restore(.waiting(requestedBy: caller.uid)), client: nil, completion: nil), on: record, at: now)
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
        try checkServed(source)
        try checkServed(target)
        let caller = caller(of: client)
        let now = Moment.now()
        let job = Job(.fork(.awaitingOwner(targetName: target)), client: client, completion: completion)
        job.caller = caller
        let from: StreamRecord
        if let record = registry[source] {
            switch record.residency {
            case .resident, .storing:
                try checkAccess(to: record, by: caller)
            case .loading:
                break
            case .gone(let failure):
                throw failure ?? .unknownStream(source)
            }
            try checkTargetFree(target)
            try checkQueue(of: record)
            from = record
        } else if let store, store.contains(stream: source) {
            try checkTargetFree(target)
            from = startLoading(source, for: caller, at: now)
        } else {
            throw .unknownStream(source)
        }
        if case .storing = from.residency { try takeBack(from) }
        if from.isResident {
            let into = try registerForkTarget(target, of: from, for: job, at: now)
            job.enter(.fork(.copying(target: into, .pending)))
        } else {
            job.access = .unchecked  // the target is registered when the load allows the fork
        }
        enqueue(job, on: from, at: now)
    }

    /// Fails with `streamExists` when `name` is registered or stored.
    func checkTargetFree(_ name: String) throws(EngineError) {
        guard registry[name] == nil, store?.contains(stream: name) != true else { throw .streamExists(name) }
    }

    /// Registers a fork's target, owned by the fork's caller, with a barrier at the head of its
    /// queue; the source (resident, the caller checked) is kept from eviction. Under the lock.
    func registerForkTarget(_ name: String, of source: StreamRecord, for job: Job, at now: Moment) throws(EngineError) -> StreamRecord {
        precondition(source.isResident, "fork target '\(name)' registered for a source that is \(source.residency)")
        try checkTargetFree(name)
        let into = try createStream(name, for: job.caller, at: now, keeping: source)
        enqueue(Job(.forkBarrier, client: nil, completion: nil), on: into, at: now)
        if let client = job.client { registry.subscribe(client, to: into) }
        return into
    }

    private func checkAccepting() throws(EngineError) {
        guard phase == .idle || phase == .running else { throw .shuttingDown }
    }

    /// Fails with `moved` when the store says this process does not serve `name` now (a
    /// cluster node, for a stream of a key group it does not hold). Under the lock.
    func checkServed(_ name: String) throws(EngineError) {
        if let store, let refusal = store.refusal(for: name) { throw .moved(refusal) }
    }

    /// Only the stream's owner, root and the admin group may use it.
    func checkAccess(to record: StreamRecord, by caller: Caller) throws(EngineError) {
        guard record.allows(caller) else { throw Self.denied(record.name, owner: record.owner) }
    }

    static func denied(_ name: String, owner: UInt32) -> EngineError {
        .permissionDenied("stream \(EngineError.quoted(name)) belongs to another user (uid \(owner)); only its owner, root or a member of the admin group may use it")
    }

    private func checkQueue(of record: StreamRecord) throws(EngineError) {
        let limit = options.maxQueuedJobsPerStream
        guard record.jobs.count < limit else {
            throw .busy("stream \(EngineError.quoted(record.name)) already has \(limit) request\(limit == 1 ? "" : "s") waiting; wait for their replies before sending more")
        }
    }

    /// Fails with `quotaExceeded` when `caller` may not own one more resident stream.
    func checkQuota(of caller: Caller) throws(EngineError) {
        if let limit = options.maxStreamsPerUser, !caller.exemptFromLimits, registry.count(ownedBy: caller.uid) >= limit {
            throw .quotaExceeded("uid \(caller.uid) already has \(limit) stream\(limit == 1 ? "" : "s"), the most one user may have; end \(limit == 1 ? "it" : "some") before creating more")
        }
    }

    /// Registers a new resident stream owned by `caller`, after checking its quota and making
    /// room. Under the lock.
    private func createStream(_ name: String, for caller: Caller, at now: Moment,
                              keeping kept: StreamRecord? = nil) throws(EngineError) -> StreamRecord {
        try checkQuota(of: caller)
        try makeRoom(keeping: kept)
        let record = StreamRecord(name: name, owner: caller.uid, residency: .resident, config: model.config,
                                  tokenizer: tokenizer, now: now)
        registry.insert(record)
        return record
    }

    /// Makes room for one more resident stream: while the resident bound is reached, moves the
    /// least recently active idle stream (not `kept`) to the store, or drops it with an
    /// `evicted` notice without one. `busy` when every stream is busy. Under the lock.
    func makeRoom(keeping kept: StreamRecord? = nil) throws(EngineError) {
        while registry.count >= options.maxResidentStreams {
            guard let victim = registry.leastRecentlyActiveIdle(except: kept) else {
                throw .busy("the engine holds its maximum of \(options.maxResidentStreams) streams and every one is busy; try again shortly")
            }
            metrics.streamsEvicted.increment()
            if store != nil {
                moveToStore(victim)
                continue
            }
            let notice = StreamNotice(
                stream: victim.name, kind: .evicted,
                message: "stream \(EngineError.quoted(victim.name)) was evicted: the engine holds at most \(options.maxResidentStreams) streams and it was the least recently active idle one")
            pendingNotices.append((notice, victim.subscribers.sorted()))
            registry.remove(victim)
            lock.broadcast()
        }
    }

    /// Moves streams left over the bound (by moves the store could not take) to the store again,
    /// least recently active first: while the store is failing, one every `storeRetryInterval`
    /// (each failure is logged, so a full disk is not retried in a storm); once it has taken
    /// one, every idle stream over the bound. Without it, they would wait for the next new
    /// stream or their idle timeout. Under the lock (the sweep).
    func relieve(at now: Moment) {
        guard store != nil, now.uptime >= storeRetryUptime else { return }
        var tries = storeFailing ? 1 : Int.max
        while tries > 0, registry.count > options.maxResidentStreams,
              let victim = registry.leastRecentlyActiveIdle() {
            moveToStore(victim)
            tries -= 1
        }
    }

    /// A stream being stored is wanted again: it becomes resident at once (its save, when the
    /// store answers, is no longer needed). Under the lock; the caller has checked access.
    private func takeBack(_ record: StreamRecord) throws(EngineError) {
        guard case .storing = record.residency else { preconditionFailure("took back stream '\(record.name)' that is \(record.residency)") }
        try makeRoom()
        registry.admit(record, owner: record.owner)
    }

    /// A new model serves from now on: checkpoints carry its hashes, and the store judges stored
    /// states by them. Under the lock.
    func useFingerprint(_ new: ModelFingerprint) {
        fingerprint = new
        store?.modelChanged(to: new)
    }

    /// Hands an idle resident stream (nothing queued) to the store: it stops counting against
    /// the bound at once but stays in memory (`.storing`) until the store says it is saved, then
    /// goes; nothing is lost, so no client is told. If the store cannot save it, it becomes
    /// resident again, over the bound (`storeAnswered`). Under the lock.
    func moveToStore(_ record: StreamRecord) {
        guard let store else { preconditionFailure("moved stream '\(record.name)' to a store the engine does not have") }
        precondition(record.jobs.isEmpty && record.isResident, "stream '\(record.name)' is \(record.residency) with \(record.jobs.count) requests and cannot be stored")
        record.moves += 1
        let generation = record.moves
        registry.retire(record, to: .storing(generation: generation))
        store.save(record.snapshot(fingerprint: fingerprint)) { [self] error in
            lock.lock()
            defer { lock.unlock() }
            storeAnswered(record, generation: generation, failure: error)
        }
    }

    /// The store answered the save of a stream leaving memory. Under the lock.
    private func storeAnswered(_ record: StreamRecord, generation: Int, failure: (any Error)?) {
        // Taken back (or stored again since): this answer concerns a move that no longer matters.
        guard case .storing(generation) = record.residency, registry[record.name] === record else { return }
        guard let failure else {
            registry.remove(record)
            streamsStored += 1
            storeFailing = false
            return
        }
        registry.admit(record, owner: record.owner)
        failedMovesToStore += 1
        storeFailing = true
        storeRetryUptime = ProcessInfo.processInfo.systemUptime + options.storeRetryInterval
        let over = registry.count - options.maxResidentStreams
        let message = "stream \(EngineError.quoted(record.name)) could not be moved to the state store (\(failure)); it stays in memory, \(over) \(over == 1 ? "stream" : "streams") over the bound of \(options.maxResidentStreams)"
        pendingNotices.append((StreamNotice(stream: record.name, kind: .notStored, message: message), []))
        lock.broadcast()
    }

    /// Queues `job` (subscribing its client when its access is granted) and marks the stream
    /// ready when the job is at the head. Under the lock.
    private func enqueue(_ job: Job, on record: StreamRecord, at now: Moment) {
        if job.access == .granted, let client = job.client { registry.subscribe(client, to: record) }
        if job.isActivity { registry.touch(record, at: now) }
        record.jobs.append(job)
        if record.jobs.count == 1 { markReady(record) }
    }

    /// Asks the engine thread to look at the stream's head job. Under the lock.
    func markReady(_ record: StreamRecord) {
        guard !record.needsAdvance else { return }
        record.needsAdvance = true
        ready.append(record)
        // A caller turning inline takes it, or wakes the engine thread when it stops.
        if turner != .caller { lock.broadcast() }
    }

    // MARK: Quick reads (any thread)

    /// The stream's info now, or nil when it must be loaded from the store first (then `info`
    /// is queued as a job, and access is checked once the stored owner is known).
    func info(_ name: String, client: ClientID?) throws(EngineError) -> StreamInfo? {
        lock.lock()
        defer { lock.unlock() }
        try checkAccepting()
        try checkServed(name)
        if let record = registry[name] {
            switch record.residency {
            case .loading:
                return nil
            case .resident, .storing:
                try checkAccess(to: record, by: caller(of: client))
                return record.isRestoring ? nil : record.info()  // a replaying restore is waited for
            case .gone(let failure):
                throw failure ?? .unknownStream(name)
            }
        }
        guard store?.contains(stream: name) == true else { throw .unknownStream(name) }
        return nil
    }

    func list(client: ClientID?) -> [StreamInfo] {
        lock.lock()
        defer { lock.unlock() }
        let caller = caller(of: client)
        return registry.streams.values.filter { $0.isResident && !$0.isRestoring && $0.allows(caller) }.map { $0.info() }.sorted { $0.stream.utf8.lexicographicallyPrecedes($1.stream.utf8) }
    }

    func stats() -> EngineStats {
        lock.lock()
        defer { lock.unlock() }
        let uptime = phase == .idle ? 0 : ProcessInfo.processInfo.systemUptime - startUptime
        var stats = EngineStats(streams: registry.count, tokens: tokensAbsorbed,
                                tokensPerSecond: meter.rate(at: uptime), steps: stepsTaken,
                                meanBatch: stepsTaken > 0 ? Double(rowsStepped) / Double(stepsTaken) : 0,
                                uptime: uptime)
        stats.stepsInline = stepsInline
        if let store {
            stats.storedStreams = store.storedStreamCount
            stats.streamsMovedToStore = streamsStored
            stats.streamsReleased = streamsReleased
            stats.streamsRestored = streamsRestored
            stats.streamsOverBound = max(0, registry.count - options.maxResidentStreams)
            stats.failedMovesToStore = failedMovesToStore
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
