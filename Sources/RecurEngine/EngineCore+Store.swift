import RecurCore

/// The engine's side of a `StreamStore`: control records awaited in a stream's FIFO, periodic
/// checkpoints, and bringing a stored stream back (docs/ENGINE.md, "Durability").
extension EngineCore {
    /// With a store, records a reset, end or fork in it before the operation takes effect:
    /// nil while the store works, then its verdict. Without a store, success at once.
    func recorded(_ job: Job, of record: StreamRecord, _ what: String,
                  _ issue: (any StreamStore, @escaping @Sendable ((any Error)?) -> Void) -> Void) -> Result<Void, EngineError>? {
        guard let store else { return .success(()) }
        switch job.storeStep {
        case .recorded: return .success(())
        case .failed(let failure): return .failure(failure)
        case .awaiting: return nil
        case .pending: break
        }
        job.updateStoreStep { $0.asked() }
        let name = record.name
        issue(store) { [self] error in
            let failure = error.map { EngineError.internal("the state store could not record the \(what) of stream \(EngineError.quoted(name)): \($0)") }
            lock.lock()
            defer { lock.unlock() }
            job.updateStoreStep { $0.answered(failure, job: job) }
            if phase == .running { markReady(record) }
        }
        return nil
    }

    /// A stream with nothing absorbed, as a reset leaves it.
    func emptySnapshot(of record: StreamRecord) -> StreamSnapshot {
        StreamSnapshot(stream: record.name, modelHash: fingerprint.model, vocabularyHash: fingerprint.vocabulary,
                       offset: 0, scoredTokens: 0, lossSum: 0, created: record.created, lastActivity: record.lastActivity,
                       owner: record.owner, state: [Float](repeating: 0, count: stateSize), logProbs: [], pendingText: [])
    }

    /// Hands the stream to the store as a checkpoint once it absorbed `checkpointInterval`
    /// tokens since the last one. Under the lock, between steps (the state is consistent).
    func checkpointIfDue(_ record: StreamRecord) {
        guard let store, record.isResident,
              record.offset - record.checkpointedOffset >= options.checkpointInterval else { return }
        store.checkpoint(record.snapshot(fingerprint: fingerprint))
        record.checkpointedOffset = record.offset
    }

    /// Brings a stream back from the store: waits for the load (off the lock); then checks
    /// every request queued behind it against the stored owner (refusing those that may not use
    /// it, before they are subscribed or counted), and only if one remains makes the stream
    /// resident, applies the snapshot and absorbs the replayed tail in ordinary batched steps,
    /// without events.
    func restore(_ job: Job, on record: StreamRecord, finished: inout [Finished]) -> Result<JobOutput, EngineError>? {
        guard let store else { preconditionFailure("a restore job on an engine without a store") }
        guard case .restore(let restore) = job.state else { preconditionFailure("restore() on a \(job.state) job") }
        switch restore {
        case .waiting(let uid):
            job.enter(.restore(.loading(requestedBy: uid)))
            store.load(stream: record.name) { [self] result in
                let loaded = result.mapError {
                    EngineError.internal("stream \(EngineError.quoted(record.name)) could not be loaded from the state store: \($0)")
                }
                lock.lock()
                defer { lock.unlock() }
                job.restoreAnswered(loaded)
                if phase == .running { markReady(record) }
            }
            return nil
        case .loading:
            return nil
        case .loaded(let loaded, let uid):
            return apply(loaded, requestedBy: uid, job, to: record, finished: &finished)
        case .replaying(let run):
            if !run.isFinished {
                activate(record)
                return nil
            }
            streamsRestored += 1
            if !run.tokens.isEmpty {
                // The replay is now in the state: a checkpoint spares the next load from it.
                store.checkpoint(record.snapshot(fingerprint: fingerprint))
                record.checkpointedOffset = record.offset
            }
            return .success(.done)
        }
    }

    /// The load answered: see `restore`. Returns the restore's result when it is over (the
    /// stream is gone, or nobody may use it), nil when the replay starts.
    private func apply(_ loaded: Result<StoredStream?, EngineError>, requestedBy uid: UInt32, _ job: Job,
                       to record: StreamRecord, finished: inout [Finished]) -> Result<JobOutput, EngineError>? {
        let stored: StoredStream
        switch loaded {
        case .failure(let failure):
            registry.retire(record, to: .gone(failure: failure))  // every request queued on it fails so
            return .success(.done)
        case .success(nil):
            registry.retire(record, to: .gone(failure: nil))  // ended meanwhile: later jobs see a missing stream
            return .success(.done)
        case .success(let found?):
            stored = found
        }
        if let failure = check(stored) {
            registry.retire(record, to: .gone(failure: failure))
            return .success(.done)
        }
        let owner = stored.snapshot.owner ?? uid
        // Ownership first: a refused request changes nothing, subscribes nothing, counts
        // against nobody.
        var kept: [Job] = [job]
        for waiting in record.jobs.dropFirst() {
            assert(waiting.access == .unchecked, "a request granted on stream '\(record.name)' while it was loading")
            if StreamRecord.allows(waiting.caller, owner: owner) {
                kept.append(waiting)
            } else if let completion = waiting.completion {
                finished.append((completion, .failure(Self.denied(record.name, owner: owner))))
            }
        }
        record.jobs = kept
        guard kept.count > 1 else {
            // Nobody may use it: the load is discarded, the stream stays in the store as it was.
            registry.retire(record, to: .gone(failure: nil))
            return .success(.done)
        }
        do throws(EngineError) {
            try makeRoom()
        } catch {
            registry.retire(record, to: .gone(failure: error))
            return .success(.done)
        }
        registry.admit(record, owner: owner)
        record.apply(stored.snapshot)
        for waiting in kept.dropFirst() {
            waiting.access = .granted
            if let client = waiting.client { registry.subscribe(client, to: record) }
        }
        for client in deferredSubscriptions.removeValue(forKey: record.name) ?? [] where record.allows(caller(of: client)) {
            registry.subscribe(client, to: record)
        }
        record.encoder = (try? IncrementalEncoder(tokenizer: tokenizer, pending: stored.pendingText))
            ?? IncrementalEncoder(tokenizer: tokenizer)
        record.checkpointedOffset = stored.snapshot.offset
        if let reason = stored.resetReason {
            pendingNotices.append((StreamNotice(stream: record.name, kind: .reset, message: reason), record.subscribers.sorted()))
            store?.checkpoint(emptySnapshot(of: record))
        }
        let run = FeedRun(tokens: stored.replay, topK: 0, silent: true, createdStream: false, durableEnd: stored.replay.count)
        job.enter(.restore(.replaying(run)))
        if run.isFinished { return restore(job, on: record, finished: &finished) }
        activate(record)
        return nil
    }

    /// Why a stored stream cannot be used by this model, if it cannot.
    private func check(_ stored: StoredStream) -> EngineError? {
        let s = stored.snapshot
        let problem: String?
        if s.offset > 0 && (s.state.count != stateSize || s.logProbs.count != vocabularySize) {
            problem = "its state has \(s.state.count) floats and \(s.logProbs.count) log-probabilities, the model needs \(stateSize) and \(vocabularySize)"
        } else if s.offset < 0 || s.scoredTokens < 0 || s.scoredTokens > s.offset {
            problem = "its counters are inconsistent (offset \(s.offset), scored \(s.scoredTokens))"
        } else if let bad = stored.replay.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            problem = "its log holds the token id \(bad), outside the vocabulary of \(vocabularySize)"
        } else {
            problem = nil
        }
        return problem.map { .internal("stream \(EngineError.quoted(s.stream)) in the state store cannot be used: \($0)") }
    }
}
