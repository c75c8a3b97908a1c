import RecurCore

/// Running the job at the head of a stream's queue, on the engine thread under the lock. Jobs
/// of one stream run strictly in submission order: a job leaves the head only when finished.
/// Each job kind is a state machine (`JobState`); this file decides its next action.
extension EngineCore {
    /// Runs the stream's head jobs until one has to wait (for steps, for the store, for a
    /// fork's source) or the queue is empty; a gone stream with an empty queue is removed.
    func advance(_ record: StreamRecord, at now: Moment, finished: inout [Finished]) {
        while let job = record.jobs.first {
            guard let result = execute(job, on: record, at: now, finished: &finished) else {
                if record.isResident { checkpointIfDue(record) }
                return
            }
            record.jobs.removeFirst()
            // A refused request is no activity on the stream.
            if job.isActivity { registry.touch(record, at: now) }
            if case .failure = result, job.createdStream, record.isResident, record.offset == 0, record.jobs.isEmpty {
                registry.retire(record, to: .gone(failure: nil))  // a rejected first feed leaves no stream behind
            }
            if let completion = job.completion { finished.append((completion, result)) }
        }
        switch record.residency {
        case .resident: checkpointIfDue(record)
        case .gone: registry.remove(record)
        case .loading: assertionFailure("stream '\(record.name)' is loading with nothing queued")
        case .storing: break  // a stale mark from before it was stored
        }
    }

    /// Does what the job can do now: its result when finished, nil when it must wait.
    private func execute(_ job: Job, on record: StreamRecord, at now: Moment,
                         finished: inout [Finished]) -> Result<JobOutput, EngineError>? {
        if case .restore = job.state { return restore(job, on: record, finished: &finished) }
        precondition(record.residency != .loading, "a \(job.state) job ran on stream '\(record.name)' while it is loading")
        if job.access == .unchecked, record.isResident {
            // Queued while the owner was not known (behind a feed that re-created the stream):
            // checked before it changes anything.
            do throws(EngineError) {
                try grant(job, on: record)
            } catch {
                return .failure(error)
            }
        }
        switch job.state {
        case .restore:
            preconditionFailure("unreachable: restores are run above")
        case .forkBarrier:
            return nil
        case .info:
            if let missing = missing(record) { return .failure(missing) }
            return .success(.info(record.info()))
        case .reset:
            if let missing = missing(record) { return .failure(missing) }
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
            if let missing = missing(record) { return .failure(missing) }
            let name = record.name
            switch recorded(job, of: record, "end", { store, done in store.end(stream: name, completion: done) }) {
            case nil: return nil
            case .failure(let failure)?: return .failure(failure)
            case .success?: break
            }
            announce(.ended, of: record, except: job.client,
                     message: "stream \(EngineError.quoted(record.name)) was ended by another client")
            record.clear()
            // Clients with later requests on the name stay subscribed (a feed re-creates it).
            let later = Set(record.jobs.dropFirst().filter { $0.access == .granted }.compactMap(\.client))
            registry.retire(record, to: .gone(failure: nil), keeping: later)
            return .success(.done)
        case .fork(let fork):
            if let missing = missing(record) {
                abandonFork(job)
                return .failure(missing)
            }
            let target: StreamRecord
            switch fork {
            case .awaitingOwner(let name):
                // The source came back from the store and its owner allows the fork: only now
                // is the target's name taken.
                do throws(EngineError) {
                    target = try registerForkTarget(name, of: record, for: job, at: now)
                } catch {
                    return .failure(error)
                }
                job.enter(.fork(.copying(target: target, .pending)))
            case .copying(let into, _):
                target = into
            }
            if store != nil {
                var copy = record.snapshot(fingerprint: fingerprint)
                copy.stream = target.name
                copy.created = target.created
                copy.owner = target.owner
                let source = record.name
                switch recorded(job, of: record, "fork", { store, done in store.rebase(copy, historyOf: source, completion: done) }) {
                case nil:
                    return nil
                case .failure(let failure)?:
                    abandonFork(job)
                    return .failure(failure)
                case .success?:
                    break
                }
            }
            return copy(record, into: target)
        case .feed(let feed):
            if case .waiting(let input, let created) = feed,
               let failure = prepareFeed(job, input, createdStream: created, on: record, at: now) {
                return .failure(failure)
            }
            switch job.nextFeedAction(segment: options.maxTokensPerFeedJob) {
            case .step:
                activate(record)
                return nil
            case .wait:
                return nil
            case .log(let run, let range):
                startLogging(job, run, range, of: record)
                return nil
            case .finish(let result):
                return result
            }
        case .predict(let predict):
            let run: PredictionRun
            switch predict {
            case .waiting(let request):
                if let missing = missing(record) { return .failure(missing) }
                guard record.offset > 0 else {
                    return .failure(.badValue("stream \(EngineError.quoted(record.name)) has absorbed no tokens yet, so there is nothing to continue"))
                }
                guard request.count > 0 else { return .success(.predictions([])) }
                run = PredictionRun(request: request, from: record, vocabularySize: vocabularySize)
                run.choose()  // the first token comes from the stream's last prediction, no step needed
                job.enter(.predict(.stepping(run)))
            case .stepping(let running):
                run = running
            }
            if run.isFinished { return .success(.predictions(run.results)) }
            activate(record)
            return nil
        }
    }

    /// Why the stream cannot serve a request that needs it: gone (ended, not in the store),
    /// or not loadable. nil when it is resident.
    private func missing(_ record: StreamRecord) -> EngineError? {
        switch record.residency {
        case .resident: nil
        case .gone(let failure): failure ?? .unknownStream(record.name)
        case .loading, .storing: preconditionFailure("a request ran on stream '\(record.name)' while it is \(record.residency)")
        }
    }

    /// Checks that the job's caller may use the stream, then subscribes its client. Under the lock.
    func grant(_ job: Job, on record: StreamRecord) throws(EngineError) {
        precondition(job.access == .unchecked && record.isResident,
                     "granted a job that is \(job.access) on stream '\(record.name)', which is \(record.residency)")
        try checkAccess(to: record, by: job.caller)
        job.access = .granted
        if let client = job.client { registry.subscribe(client, to: record) }
    }

    func activate(_ record: StreamRecord) {
        guard !record.isActive else { return }
        record.isActive = true
        active.append(record)
    }

    /// A fork that fails before copying: its target (registered with a barrier at the head of
    /// its queue) goes, and requests queued on it see a missing stream.
    private func abandonFork(_ job: Job) {
        guard case .fork(.copying(let target, _)) = job.state, case .forkBarrier = target.jobs.first?.state else { return }
        target.jobs.removeFirst()
        if target.isResident { registry.retire(target, to: .gone(failure: nil)) }
        markReady(target)
    }

    /// Copies `source` into `target` and releases the target's queue.
    private func copy(_ source: StreamRecord, into target: StreamRecord) -> Result<JobOutput, EngineError> {
        guard case .forkBarrier = target.jobs.first?.state else {
            preconditionFailure("fork target '\(target.name)' lost the barrier at the head of its queue")
        }
        target.jobs.removeFirst()
        markReady(target)
        target.state.p.update(from: source.state.p, count: stateSize)
        target.logProbs.p.update(from: source.logProbs.p, count: vocabularySize)
        target.encoder = source.encoder
        target.offset = source.offset
        target.scoredTokens = source.scoredTokens
        target.lossSum = source.lossSum
        target.checkpointedOffset = source.offset
        return .success(.done)
    }

    /// Tokenizes a text feed (all or nothing) and re-creates an ended stream (a creation by the
    /// feed's caller: quota and room are checked). The error, if any, leaves the stream exactly
    /// as it was.
    private func prepareFeed(_ job: Job, _ input: FeedInput, createdStream: Bool, on record: StreamRecord,
                             at now: Moment) -> EngineError? {
        let recreate: Bool
        switch record.residency {
        case .resident: recreate = false
        case .gone(let failure?): return failure
        case .gone(nil): recreate = true
        case .loading, .storing: preconditionFailure("a feed ran on stream '\(record.name)' while it is \(record.residency)")
        }
        var encoder = recreate ? IncrementalEncoder(tokenizer: tokenizer) : record.encoder
        let tokens: [Int32]
        switch input {
        case .text(let bytes, let flush):
            do {
                var text = try encoder.feed(bytes)
                if flush { text += try encoder.finish() }
                tokens = text
            } catch {
                let detail: String
                if case .tokenization(let message) = error { detail = message } else { detail = error.description }
                return .badValue("cannot tokenize the text for stream \(EngineError.quoted(record.name)): \(detail) (offsets count from the stream's start or last reset)")
            }
        case .tokens(let ids):
            tokens = ids
        }
        if recreate {
            do throws(EngineError) {
                try checkQuota(of: job.caller)
                try makeRoom()
            } catch {
                return error
            }
            record.clear()
            record.created = now.wall
            record.checkpointedOffset = 0
            registry.admit(record, owner: job.caller.uid)
            job.access = .granted
            if let client = job.client { registry.subscribe(client, to: record) }
        }
        let heldBefore = recreate ? [] : record.encoder.pendingBytes
        record.encoder = encoder
        let logs = store?.logsTokens == true
        let run = FeedRun(tokens: tokens, topK: job.topK, units: job.units, silent: false,
                          createdStream: createdStream || recreate, durableEnd: logs ? 0 : tokens.count)
        run.pendingUnlogged = logs && tokens.isEmpty && encoder.pendingBytes != heldBefore
        job.enter(.feed(.stepping(run)))
        return nil
    }

    /// Appends the feed's next segment to the store's log; the stream waits until it is durable.
    private func startLogging(_ job: Job, _ run: FeedRun, _ range: Range<Int>, of record: StreamRecord) {
        guard let store else { preconditionFailure("a feed awaits the log of an engine without a store") }
        let segment = Array(run.tokens[range])
        let name = record.name
        // What the tokenizer holds once the whole feed is absorbed; an earlier segment leaves it
        // unknown (the rest of the text), logged as nothing.
        let pending = range.upperBound == run.tokens.count ? record.encoder.pendingBytes : []
        store.append(stream: name, offset: record.offset, tokens: segment, pendingText: pending, owner: record.owner,
                     created: record.created) { [self] error in
            let failure = error.map { EngineError.internal("the state store could not log \(segment.count) tokens of stream \(EngineError.quoted(name)): \($0)") }
            lock.lock()
            defer { lock.unlock() }
            job.feedLogged(failure: failure)
            if phase == .running { markReady(record) }
        }
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
