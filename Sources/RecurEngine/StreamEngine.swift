import RecurCore

/// Many named streams over one model, each with its own hidden state, stepped together: every
/// step takes one token from each stream that has work and advances them all with one matrix
/// product per layer. A stream's predictions equal `Evaluator` (what `recur eval --per-token`
/// reports) bit for bit, however its text is chunked and whatever it is batched with.
///
/// Requests on one stream run in the order they were made (see docs/ENGINE.md, "Ordering");
/// requests on different streams run concurrently. Every method is safe from any thread or task.
/// Bad requests throw `EngineError`; only misuse of the engine itself (start twice, invalid
/// options) is a precondition failure.
public final class StreamEngine: Sendable {
    let core: EngineCore

    /// The model every stream runs (the latest one after `replaceModel`).
    public var model: Model {
        core.lock.lock()
        defer { core.lock.unlock() }
        return core.model
    }
    /// The limits this engine was made with.
    public var options: EngineOptions { core.options }

    /// An engine over `model`. With a `store`, the store logs feeds when it `logsTokens`,
    /// receives checkpoints, evicted and expired streams, and brings stored streams back on
    /// their next request (docs/ENGINE.md, "Durability").
    public init(model: Model, options: EngineOptions = .init(), store: (any StreamStore)? = nil) {
        core = EngineCore(model: model, options: options, store: store)
    }

    /// The hashes stored states are tagged with (zero for an engine without a store).
    public var fingerprint: ModelFingerprint {
        core.lock.lock()
        defer { core.lock.unlock() }
        return core.fingerprint
    }

    /// Starts the stepping thread; call once. Requests made before wait until then.
    /// `shutdown()` stops it (pending jobs fail with `.shuttingDown`).
    public func start() { core.start() }

    /// Stops the stepping thread after its current step, fails every pending and later request
    /// with `.shuttingDown`, and drops all streams (with a store: after handing a checkpoint of
    /// every stream to it). Returns when the thread has stopped.
    public func shutdown() { core.shutdown() }

    /// Notices go here (set once, before start). Called from the engine thread: must not block.
    /// `clients` are the stream's subscribers (other than the one whose request caused it); it
    /// may be empty for expiry and eviction.
    public func setNoticeHandler(_ handler: @escaping @Sendable (StreamNotice, [ClientID]) -> Void) {
        core.lock.lock()
        defer { core.lock.unlock() }
        core.noticeHandler = handler
    }

    /// Tokenizes `text` with the stream's own incremental tokenizer (so text split anywhere, even
    /// inside a UTF-8 sequence or a word, tokenizes as a whole would) and absorbs the tokens,
    /// returning one event per token in order. Creates the stream if missing. `flush` finishes
    /// the tokenizer (emits a held-back word). Bad text (unknown character under the model's
    /// `error` policy) → `.badValue` and no change at all.
    /// Large texts are absorbed in segments internally but returned together, so callers should
    /// pass at most a few KiB at a time to keep memory bounded.
    /// `units`: hidden units (`hiddenUnits`) whose values each event carries, in that order.
    public func feed(stream: String, text: [UInt8], topK: Int?, flush: Bool = false, units: [Int] = [],
                     client: ClientID) async throws(EngineError) -> [TokenEvent] {
        try checkName(stream)
        let k = try checkTopK(topK)
        let offsets = try checkUnits(units)
        let output = try await core.perform(on: stream, create: true) {
            Job(.feed(.waiting(.text(text, flush: flush), createdStream: false)), client: client, topK: k, units: offsets, completion: $0)
        }
        guard case .events(let events) = output else { preconditionFailure("a feed finished with \(output)") }
        return events
    }

    /// Same with token ids already tokenized (stdin mode, benchmarks, tests). An id outside the
    /// vocabulary → `.badValue` and no change.
    public func feed(stream: String, tokens: [Int32], topK: Int?, client: ClientID) async throws(EngineError) -> [TokenEvent] {
        try checkName(stream)
        let k = try checkTopK(topK)
        try checkTokens(tokens)
        let output = try await core.perform(on: stream, create: true) {
            Job(.feed(.waiting(.tokens(tokens), createdStream: false)), client: client, topK: k, completion: $0)
        }
        guard case .events(let events) = output else { preconditionFailure("a feed finished with \(output)") }
        return events
    }

    /// Continues the stream by `count` tokens without changing it, each with its probability under
    /// the model. Temperature 0 = greedy (argmax, ties to the lower id); otherwise sampled from
    /// softmax(logprob / temperature), among the `topK` most probable when given, from `seed`
    /// (random when nil). The first token continues the stream's last prediction, so the stream
    /// must have absorbed a token (else `.badValue`).
    public func predict(stream: String, count: Int, temperature: Float, topK: Int?, seed: UInt64?,
                        client: ClientID) async throws(EngineError) -> [TokenProbability] {
        try checkName(stream)
        let request = try checkPredict(count: count, temperature: temperature, topK: topK, seed: seed)
        let output = try await core.perform(on: stream, create: false) {
            Job(.predict(.waiting(request)), client: client, completion: $0)
        }
        guard case .predictions(let tokens) = output else { preconditionFailure("a predict finished with \(output)") }
        return tokens
    }

    /// Returns the stream to the state of a new one (after the requests queued before this one).
    /// Its other subscribers get a `.reset` notice.
    public func reset(stream: String, client: ClientID) async throws(EngineError) {
        try checkName(stream)
        _ = try await core.perform(on: stream, create: false) { Job(.reset(.pending), client: client, completion: $0) }
    }

    /// Copies the stream, as it is after the requests queued before this one, under a new name.
    /// Requests on the new stream wait for the copy. `.streamExists` if the name is taken.
    public func fork(stream: String, into newName: String, client: ClientID) async throws(EngineError) {
        try checkName(stream)
        try checkName(newName)
        let result: Result<JobOutput, EngineError> = await withCheckedContinuation { continuation in
            do throws(EngineError) {
                try core.submitFork(from: stream, into: newName, client: client) { continuation.resume(returning: $0) }
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        _ = try result.get()
    }

    /// Lets go of the streams whose names `matches` (a cluster node losing or handing off key
    /// groups): each leaves memory once the requests queued on it are done, after a checkpoint
    /// in the store when `save`. Returns when none is left in memory. The store must refuse new
    /// requests for them meanwhile (`StreamStore.refusal(for:)`).
    public func release(streamsWhere matches: @escaping @Sendable (String) -> Bool, save: Bool) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            core.release(.init(matches: matches, save: save, done: { continuation.resume() }))
        }
    }

    /// Drops the stream (after the requests queued before this one). Its other subscribers get
    /// an `.ended` notice.
    public func end(stream: String, client: ClientID) async throws(EngineError) {
        try checkName(stream)
        _ = try await core.perform(on: stream, create: false) { Job(.end(.pending), client: client, completion: $0) }
    }

    /// The stream as it is now: queued requests not yet run are not reflected (except for a
    /// stream in the store, which is brought back first, after the requests queued on it).
    /// `.permissionDenied` if `client` may not use it (nil: the daemon's own process).
    public func info(stream: String, client: ClientID? = nil) async throws(EngineError) -> StreamInfo {
        try checkName(stream)
        if let info = try core.info(stream, client: client) { return info }
        let output = try await core.perform(on: stream, create: false) { Job(.info, client: client, completion: $0) }
        guard case .info(let info) = output else { preconditionFailure("an info finished with \(output)") }
        return info
    }

    /// Every resident stream `client` may use (all of them for an admin), by name (UTF-8 byte
    /// order); streams in the store are not listed. nil: the daemon's own process.
    public func list(client: ClientID? = nil) async -> [StreamInfo] { core.list(client: client) }

    /// Says who `client` is, before its first request: the streams it creates belong to
    /// `caller.uid`, and it may use only those unless `caller.actsOnAll`. A client never
    /// identified is `Caller.process`. `disconnect(client:)` forgets it.
    public func identify(client: ClientID, as caller: Caller) { core.identify(client, as: caller) }

    /// Counters of the whole engine since `start()`.
    public func stats() async -> EngineStats { core.stats() }

    /// Starts watching a stream that exists (brought back from the store if needed) and that
    /// `client` may use: every token it absorbs from now on, whoever feeds it, waits in the
    /// watch (`StreamWatch.take`) with `topK` predictions and the values of `units`. The engine
    /// never waits for the watcher nor wakes it; one that lets `capacity` events pile up is cut
    /// off (`StreamWatch`). Feeds of the stream pay for its watchers only while it has some.
    /// `ended` is called once when the watch ends, with why, possibly on the engine thread
    /// (it must not block); the watcher may be busy elsewhere then.
    public func watch(stream: String, topK: Int?, units: [Int] = [], capacity: Int = 1024, client: ClientID? = nil,
                      ended: @escaping @Sendable (StreamWatch.End) -> Void = { _ in }) async throws(EngineError) -> StreamWatch {
        try checkName(stream)
        let k = try checkTopK(topK)
        let offsets = try checkUnits(units)
        guard capacity >= 1 else { throw .badValue("a watch needs room for at least 1 event, not \(capacity)") }
        _ = try await info(stream: stream, client: client)  // exists, may be used, is resident
        let watch = StreamWatch(stream: stream, topK: k, units: units, offsets: offsets, capacity: capacity, ended: ended) { [core] watch in
            core.unwatch(watch)
        }
        do throws(EngineError) {
            try core.attach(watch, client: client)
        } catch {
            watch.finishDetached(.cancelled)
            throw error
        }
        return watch
    }

    /// Forget a client (connection closed): its identity and subscriptions go; its named streams stay.
    public func disconnect(client: ClientID) { core.disconnect(client) }
}

extension EngineCore {
    /// Submits the job `make` builds around a completion and waits for its result.
    func perform(on stream: String, create: Bool,
                 _ make: (@escaping JobCompletion) -> Job) async throws(EngineError) -> JobOutput {
        let result: Result<JobOutput, EngineError> = await withCheckedContinuation { continuation in
            let job = make { continuation.resume(returning: $0) }
            do throws(EngineError) {
                // A lone request is turned here, on the caller's thread (`turnInline`).
                if try submit(job, to: stream, create: create, inline: true) { turnInline() }
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        return try result.get()
    }
}
