import RecurCore

/// Requests to the stepping thread itself rather than to a stream: heartbeats (a watchdog
/// proving the loop turns), a model to swap in between two steps, and the test-only hang.
/// (lock) Every field is read and written under `EngineCore.lock`.
struct EngineControl {
    /// Answered by the engine thread at the top of its next iteration.
    var heartbeats: [@Sendable () -> Void] = []
    /// Installed by the engine thread between two steps.
    var pendingModel: (model: Model, stepper: Stepper, fingerprint: ModelFingerprint,
                       completion: @Sendable (Result<Void, EngineError>) -> Void)?
    /// Test-only: the engine thread stops turning for good.
    var hangRequested = false

    /// Whether the engine thread has something to do here (it must not sleep).
    var hasWork: Bool { !heartbeats.isEmpty || pendingModel != nil || hangRequested }
}

/// Why `replacement` cannot take over the streams of `current`, or nil when it can: the same
/// vocabulary (token ids mean the same) and the same state shape (cell, layers, hidden width),
/// so every stream's hidden state and last prediction carry over unchanged.
public func modelIncompatibility(of replacement: Model, with current: Model) -> String? {
    let a = current.config, b = replacement.config
    if a.cell != b.cell { return "the cell differs (\(b.cell.rawValue), serving \(a.cell.rawValue))" }
    if a.layers != b.layers { return "the layer count differs (\(b.layers), serving \(a.layers))" }
    if a.hiddenSize != b.hiddenSize { return "the hidden width differs (\(b.hiddenSize), serving \(a.hiddenSize))" }
    if current.vocabulary != replacement.vocabulary {
        return "the vocabulary differs (\(replacement.vocabulary.kind.rawValue) of \(replacement.vocabulary.count) tokens, serving \(current.vocabulary.kind.rawValue) of \(current.vocabulary.count))"
    }
    return nil
}

extension EngineCore {
    /// Queues a heartbeat; the engine thread calls `answer` (without the lock) at the top of its
    /// next loop iteration, so an answer proves the stepping loop is turning. Never answered
    /// once the engine has stopped, or while it hangs.
    func requestHeartbeat(_ answer: @escaping @Sendable () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard phase == .idle || phase == .running else { return }
        control.heartbeats.append(answer)
        lock.broadcast()
    }

    /// Hands `model` (already checked compatible) and its stepper to the engine thread.
    func submitModel(_ model: Model, stepper: Stepper, fingerprint: ModelFingerprint,
                     completion: @escaping @Sendable (Result<Void, EngineError>) -> Void) {
        lock.lock()
        switch phase {
        case .idle:
            self.model = model
            self.stepper = stepper
            useFingerprint(fingerprint)
            lock.unlock()
            completion(.success(()))
        case .running:
            let previous = control.pendingModel
            control.pendingModel = (model, stepper, fingerprint, completion)
            lock.broadcast()
            lock.unlock()
            previous?.completion(.success(()))  // superseded before it was installed: as good as done
        case .stopping, .stopped:
            lock.unlock()
            completion(.failure(.shuttingDown))
        }
    }

    func requestHangForTesting() {
        lock.lock()
        defer { lock.unlock() }
        control.hangRequested = true
        lock.broadcast()
    }

    /// Engine thread, under the lock, between steps: installs a pending model and collects the
    /// callbacks to run once the lock is released. Returns true when a test asked the thread to hang.
    func takeControl(into callbacks: inout [@Sendable () -> Void]) -> Bool {
        callbacks.append(contentsOf: control.heartbeats)
        control.heartbeats.removeAll()
        if let pending = control.pendingModel {
            model = pending.model
            stepper = pending.stepper
            useFingerprint(pending.fingerprint)
            control.pendingModel = nil
            callbacks.append { pending.completion(.success(())) }
        }
        return control.hangRequested
    }
}

extension StreamEngine {
    /// Calls `answer` from the stepping thread at the top of its next iteration: proof that the
    /// loop turns (a watchdog pings only after an answer). Never answered after `shutdown()` or
    /// while the engine hangs; callers must not wait for it without a deadline.
    public func requestHeartbeat(_ answer: @escaping @Sendable () -> Void) {
        core.requestHeartbeat(answer)
    }

    /// Serves `model` from now on, keeping every stream: it is swapped in between two steps, so
    /// a step runs wholly on one model. The model must have the same vocabulary and state shape
    /// (`modelIncompatibility`), else `.badValue` with the reason and nothing changes.
    /// Returns once the new model is in place.
    public func replaceModel(_ model: Model) async throws(EngineError) {
        if let problem = modelIncompatibility(of: model, with: self.model) {
            throw .badValue("the new model cannot take over the streams: \(problem)")
        }
        let stepper = Stepper(model: model, maxBatch: options.maxBatch, precision: options.precision)
        let fingerprint = core.store == nil ? ModelFingerprint(model: 0, vocabulary: 0) : ModelFingerprint(of: model)
        let result: Result<Void, EngineError> = await withCheckedContinuation { continuation in
            core.submitModel(model, stepper: stepper, fingerprint: fingerprint) { continuation.resume(returning: $0) }
        }
        try result.get()
    }

    /// TEST ONLY, debug builds only: makes the stepping thread stop turning for good (no step,
    /// no reply, no heartbeat), to prove that a watchdog notices. The engine cannot recover and
    /// `shutdown()` would wait forever. In a release build it does nothing.
    public func hangForTesting() {
        #if DEBUG
        core.requestHangForTesting()
        #endif
    }
}

extension StreamEngine {
    /// The streams `client` is subscribed to (it will hear of their expiry, eviction, or another
    /// client's end or reset), by name: what a connection carries across a restart.
    public func subscriptions(of client: ClientID) -> [String] {
        core.lock.lock()
        defer { core.lock.unlock() }
        return core.registry.subscriptions(of: client).sorted()
    }

    /// Subscribes `client` to each named stream that exists and that its user may use (a
    /// connection handed over from the previous process, identified first); names of streams
    /// that are gone or belong to another user are skipped. A stream in the store
    /// (every stream, just after a restart) gets the subscription when it is brought back.
    public func subscribe(client: ClientID, to streams: [String]) {
        core.lock.lock()
        defer { core.lock.unlock() }
        for name in streams {
            // Only a stream the client's user may use (it is checked again for a stored one,
            // once loaded).
            if let record = core.registry[name], record.isResident {
                if record.allows(core.caller(of: client)) { core.registry.subscribe(client, to: record) }
            } else if core.store?.contains(stream: name) == true {
                core.deferredSubscriptions[name, default: []].insert(client)
            }
        }
    }
}
