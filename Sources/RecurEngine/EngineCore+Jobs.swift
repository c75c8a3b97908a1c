import RecurCore

/// Running the job at the head of a stream's queue, on the engine thread under the lock. Jobs
/// of one stream run strictly in submission order: a job leaves the head only when finished.
extension EngineCore {
    /// Runs the stream's head jobs until one has to wait (for steps, for the token log, for a
    /// fork's source) or the queue is empty; a dead stream with an empty queue is removed.
    func advance(_ record: StreamRecord, at now: Moment, finished: inout [Finished]) {
        while let job = record.jobs.first {
            guard let result = execute(job, on: record, at: now) else {
                checkpointIfDue(record)
                return
            }
            record.jobs.removeFirst()
            registry.touch(record, at: now)
            if case .failure = result, job.createdStream, record.offset == 0, record.jobs.isEmpty {
                record.alive = false  // a rejected first feed leaves no stream behind
            }
            if let completion = job.completion { finished.append((completion, result)) }
        }
        if record.loadError != nil { record.alive = false }
        if record.alive { checkpointIfDue(record) } else { registry.remove(record) }
    }

    /// Does what the job can do now: its result when finished, nil when it must wait.
    private func execute(_ job: Job, on record: StreamRecord, at now: Moment) -> Result<JobOutput, EngineError>? {
        if let failure = record.loadError {
            abandonFork(job)
            return .failure(failure)
        }
        if job.ownerUnchecked, record.alive {
            job.ownerUnchecked = false
            do throws(EngineError) {
                try checkAccess(to: record, by: job.caller)
            } catch {
                abandonFork(job)
                return .failure(error)
            }
        }
        switch job.kind {
        case .forkBarrier:
            return nil
        case .restore:
            return restore(job, on: record)
        case .info:
            guard record.alive else { return .failure(.unknownStream(record.name)) }
            return .success(.info(record.info()))
        case .reset:
            guard record.alive else { return .failure(.unknownStream(record.name)) }
            let empty = emptySnapshot(of: record)
            switch recorded(job, of: record, "reset", { store, done in store.rebase(empty, historyOf: nil, completion: done) }) {
            case nil: return nil
            case .failure(let failure)?: return .failure(failure)
            case .success?: break
            }
            record.clear()
            record.checkpointedOffset = 0
            announce(.reset, of: record, except: job.client,
                     message: "stream \(EngineError.quoted(record.name)) was reset by another client")
            return .success(.done)
        case .end:
            guard record.alive else { return .failure(.unknownStream(record.name)) }
            let name = record.name
            switch recorded(job, of: record, "end", { store, done in store.end(stream: name, completion: done) }) {
            case nil: return nil
            case .failure(let failure)?: return .failure(failure)
            case .success?: break
            }
            announce(.ended, of: record, except: job.client,
                     message: "stream \(EngineError.quoted(record.name)) was ended by another client")
            record.clear()
            record.alive = false
            let later = Set(record.jobs.dropFirst().compactMap(\.client))
            for client in record.subscribers where !later.contains(client) { registry.unsubscribe(client, from: record) }
            return .success(.done)
        case .fork(let target):
            if record.alive, store != nil {
                var copy = record.snapshot(fingerprint: fingerprint)
                copy.stream = target.name
                copy.created = target.created
                copy.owner = target.owner
                let source = record.name
                switch recorded(job, of: record, "fork", { store, done in store.rebase(copy, historyOf: source, completion: done) }) {
                case nil: return nil
                case .failure(let failure)?: return .failure(failure)
                case .success?: break
                }
            }
            return fork(record, into: target)
        case .feedText, .feedTokens:
            if !job.prepared, let failure = prepareFeed(job, on: record, at: now) { return .failure(failure) }
            if let failure = job.logFailure { return .failure(failure) }
            if job.cursor == job.tokens.count { return .success(.events(job.events)) }
            if job.cursor < job.durableEnd {
                activate(record)
            } else if !job.logging {
                startLogging(job, of: record)
            }
            return nil
        case .predict(let request):
            if !job.prepared {
                job.prepared = true
                guard record.alive else { return .failure(.unknownStream(record.name)) }
                guard record.offset > 0 else {
                    return .failure(.badValue("stream \(EngineError.quoted(record.name)) has absorbed no tokens yet, so there is nothing to continue"))
                }
                guard request.count > 0 else { return .success(.predictions([])) }
                let run = PredictionRun(request: request, from: record, vocabularySize: vocabularySize)
                run.choose()  // the first token comes from the stream's last prediction, no step needed
                job.prediction = run
            }
            if let run = job.prediction, run.isFinished { return .success(.predictions(run.results)) }
            activate(record)
            return nil
        }
    }

    func activate(_ record: StreamRecord) {
        guard !record.isActive else { return }
        record.isActive = true
        active.append(record)
    }

    /// A fork that fails before copying: its target (registered at submission, its queue held
    /// by a barrier) goes, and requests queued on it see a missing stream.
    private func abandonFork(_ job: Job) {
        guard case .fork(let target) = job.kind, case .forkBarrier = target.jobs.first?.kind else { return }
        target.jobs.removeFirst()
        target.alive = false
        markReady(target)
    }

    /// Copies `source` into `target` and releases the target's queue.
    private func fork(_ source: StreamRecord, into target: StreamRecord) -> Result<JobOutput, EngineError> {
        guard case .forkBarrier = target.jobs.first?.kind else {
            preconditionFailure("fork target '\(target.name)' lost the barrier at the head of its queue")
        }
        target.jobs.removeFirst()
        markReady(target)
        guard source.alive else {
            target.alive = false
            return .failure(.unknownStream(source.name))
        }
        target.state.p.update(from: source.state.p, count: stateSize)
        target.logProbs.p.update(from: source.logProbs.p, count: vocabularySize)
        target.encoder = source.encoder
        target.offset = source.offset
        target.scoredTokens = source.scoredTokens
        target.lossSum = source.lossSum
        target.checkpointedOffset = source.offset
        return .success(.done)
    }

    /// Tokenizes a text feed (all or nothing) and re-creates an ended stream. The error, if any,
    /// leaves the stream exactly as it was.
    private func prepareFeed(_ job: Job, on record: StreamRecord, at now: Moment) -> EngineError? {
        job.prepared = true
        var encoder = record.alive ? record.encoder : IncrementalEncoder(tokenizer: tokenizer)
        switch job.kind {
        case .feedText(let bytes, let flush):
            do {
                var tokens = try encoder.feed(bytes)
                if flush { tokens += try encoder.finish() }
                job.tokens = tokens
            } catch {
                let detail: String
                if case .tokenization(let message) = error { detail = message } else { detail = error.description }
                return .badValue("cannot tokenize the text for stream \(EngineError.quoted(record.name)): \(detail) (offsets count from the stream's start or last reset)")
            }
        case .feedTokens(let tokens):
            job.tokens = tokens
        default:
            preconditionFailure("prepareFeed called on a \(job.kind) job")
        }
        if !record.alive {
            record.clear()
            record.alive = true
            record.created = now.wall
            registry.changeOwner(of: record, to: job.caller.uid)
        }
        record.encoder = encoder
        job.durableEnd = tokenLog == nil && store?.logsTokens != true ? job.tokens.count : 0
        job.events.reserveCapacity(job.tokens.count)
        return nil
    }

    /// Appends the feed's next segment to the token log; the stream waits until it is durable.
    private func startLogging(_ job: Job, of record: StreamRecord) {
        let start = job.cursor, end = min(job.tokens.count, start + options.maxTokensPerFeedJob)
        let segment = Array(job.tokens[start..<end])
        let name = record.name, offset = record.offset
        if let store {
            // What the tokenizer holds once the whole feed is absorbed; an earlier segment
            // leaves it unknown (the rest of the text), logged as nothing.
            let pending = end == job.tokens.count ? record.encoder.pendingBytes : []
            job.logging = true
            store.append(stream: name, offset: offset, tokens: segment, pendingText: pending, owner: record.owner,
                         created: record.created) { [self] error in
                let failure = error.map { EngineError.internal("the state store could not log \(segment.count) tokens of stream \(EngineError.quoted(name)): \($0)") }
                segmentLogged(job, of: record, upTo: end, failure: failure)
            }
            return
        }
        guard let log = tokenLog else { return }
        job.logging = true
        Task { [self] in
            var failure: EngineError?
            do {
                try await log.append(stream: name, offset: offset, tokens: segment)
            } catch {
                failure = .internal("the token log could not record \(segment.count) tokens of stream \(EngineError.quoted(name)): \(error)")
            }
            segmentLogged(job, of: record, upTo: end, failure: failure)
        }
    }

    /// The token log answered: the segment may be stepped, or the feed fails.
    private func segmentLogged(_ job: Job, of record: StreamRecord, upTo end: Int, failure: EngineError?) {
        lock.lock()
        defer { lock.unlock() }
        job.logging = false
        if let failure { job.logFailure = failure } else { job.durableEnd = end }
        if phase == .running { markReady(record) }
    }

    /// Queues a notice for the stream's subscribers other than `client`. Another client's end or
    /// reset concerns nobody when no one else uses the stream; expiry and eviction always
    /// produce a notice (the server logs them).
    func announce(_ kind: StreamNotice.Kind, of record: StreamRecord, except client: ClientID?, message: String) {
        let clients = record.subscribers.filter { $0 != client }.sorted()
        if clients.isEmpty && (kind == .ended || kind == .reset) { return }
        pendingNotices.append((StreamNotice(stream: record.name, kind: kind, message: message), clients))
    }
}
