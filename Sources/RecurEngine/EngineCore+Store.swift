import RecurCore

/// The engine's side of a `StreamStore`: control records awaited in a stream's FIFO, periodic
/// checkpoints, and bringing a stored stream back (docs/ENGINE.md, "Durability").
extension EngineCore {
    /// With a store, records a reset, end or fork in it before the operation takes effect:
    /// nil while the store works, then its verdict. Without a store, success at once.
    func recorded(_ job: Job, of record: StreamRecord, _ what: String,
                  _ issue: (any StreamStore, @escaping @Sendable ((any Error)?) -> Void) -> Void) -> Result<Void, EngineError>? {
        guard let store else { return .success(()) }
        if let failure = job.logFailure { return .failure(failure) }
        if job.stored { return .success(()) }
        if job.logging { return nil }
        job.logging = true
        let name = record.name
        issue(store) { [self] error in
            lock.lock()
            defer { lock.unlock() }
            job.logging = false
            if let error {
                job.logFailure = .internal("the state store could not record the \(what) of stream \(EngineError.quoted(name)): \(error)")
            } else {
                job.stored = true
            }
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
        guard let store, record.alive, record.restored,
              record.offset - record.checkpointedOffset >= options.checkpointInterval else { return }
        store.checkpoint(record.snapshot(fingerprint: fingerprint))
        record.checkpointedOffset = record.offset
    }

    /// Brings a stream back from the store: waits for the load (off the lock), applies the
    /// snapshot, then absorbs the replayed tail in ordinary batched steps, without events.
    func restore(_ job: Job, on record: StreamRecord) -> Result<JobOutput, EngineError>? {
        guard let store else { preconditionFailure("a restore job on an engine without a store") }
        if !job.prepared {
            guard let loaded = job.loaded else {
                guard !job.logging else { return nil }
                job.logging = true
                store.load(stream: record.name) { [self] result in
                    lock.lock()
                    defer { lock.unlock() }
                    job.logging = false
                    job.loaded = result.mapError {
                        .internal("stream \(EngineError.quoted(record.name)) could not be loaded from the state store: \($0)")
                    }
                    if phase == .running { markReady(record) }
                }
                return nil
            }
            job.prepared = true
            let stored: StoredStream
            switch loaded {
            case .failure(let failure):
                record.loadError = failure
                return .failure(failure)
            case .success(nil):
                record.alive = false  // ended meanwhile: later jobs see a missing stream
                record.restored = true
                return .success(.done)
            case .success(let found?):
                stored = found
            }
            if let failure = check(stored) {
                record.loadError = failure
                return .failure(failure)
            }
            record.apply(stored.snapshot)
            for client in deferredSubscriptions.removeValue(forKey: record.name) ?? [] { registry.subscribe(client, to: record) }
            if let owner = stored.snapshot.owner { registry.changeOwner(of: record, to: owner) }
            record.encoder = (try? IncrementalEncoder(tokenizer: tokenizer, pending: stored.pendingText))
                ?? IncrementalEncoder(tokenizer: tokenizer)
            record.checkpointedOffset = stored.snapshot.offset
            if let reason = stored.resetReason {
                pendingNotices.append((StreamNotice(stream: record.name, kind: .reset, message: reason), record.subscribers.sorted()))
                store.checkpoint(emptySnapshot(of: record))
            }
            job.tokens = stored.replay
            job.cursor = 0
            job.durableEnd = stored.replay.count
            job.silent = true
        }
        if job.cursor < job.tokens.count {
            activate(record)
            return nil
        }
        record.restored = true
        streamsRestored += 1
        if !job.tokens.isEmpty {
            // The replay is now in the state: a checkpoint spares the next load from it.
            store.checkpoint(record.snapshot(fingerprint: fingerprint))
            record.checkpointedOffset = record.offset
        }
        return .success(.done)
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
