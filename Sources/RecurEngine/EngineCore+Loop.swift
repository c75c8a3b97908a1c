import Foundation
import RecurCore

/// The stepping thread: each iteration runs the quick jobs at the head of ready streams, then
/// takes one token from active streams (new and short requests first, then long ones in turn,
/// `selectRows`), steps them as one batch, and records the results. It sleeps only when no stream has work.
extension EngineCore {
    typealias Finished = (JobCompletion, Result<JobOutput, EngineError>)

    func start() {
        lock.lock()
        precondition(phase == .idle, "start() must be called once, on a new engine (it is \(phase))")
        phase = .running
        startUptime = ProcessInfo.processInfo.systemUptime
        lock.unlock()
        let thread = Thread { [self] in run() }
        thread.name = "recur-engine"
        thread.start()
    }

    /// Stops the thread after its current step and fails every pending job with `.shuttingDown`.
    /// Returns once the thread has stopped (at once when called from the thread itself).
    func shutdown() {
        var finished: [Finished] = []
        lock.lock()
        switch phase {
        case .idle:
            phase = .stopped
            failEverything(into: &finished)
        case .running, .stopping:
            phase = .stopping
            lock.broadcast()
            let onEngineThread = enginePThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
            while !onEngineThread && phase != .stopped { lock.wait() }
        case .stopped:
            break
        }
        lock.unlock()
        for (completion, result) in finished { completion(result) }
    }

    private func run() {
        lock.lock()
        enginePThread = pthread_self()
        nextSweep = ProcessInfo.processInfo.systemUptime + options.sweepInterval
        while true {
            // Sleeps while there is nothing to do, and while a caller turns inline.
            while phase == .running && (turner == .caller || !hasWork) {
                if turner == .caller {
                    _ = lock.wait(until: Date(timeIntervalSinceNow: 1))
                    continue
                }
                let wait = nextSweep - ProcessInfo.processInfo.systemUptime
                if wait <= 0 { break }
                _ = lock.wait(until: Date(timeIntervalSinceNow: wait))
            }
            guard phase == .running else { break }
            turner = .engineThread
            turn(inline: false)
            turner = .nobody
        }
        // A caller stepping inline finishes its turn before the streams are stored and dropped.
        while turner == .caller { lock.wait() }
        var finished: [Finished] = []
        var notices: [(StreamNotice, [ClientID])] = []
        if let store {
            // Graceful stop: every stream's state goes to the store, between two steps.
            for record in registry.streams.values where !record.isRestoring {
                switch record.residency {
                case .resident, .storing: store.checkpoint(record.snapshot(fingerprint: fingerprint))
                case .loading, .gone: break
                }
            }
        }
        failEverything(into: &finished)
        let released = releases.map(\.done)
        releases = []
        active.removeAll()
        rows.removeAll()
        swap(&notices, &pendingNotices)
        let handler = noticeHandler
        phase = .stopped
        lock.broadcast()
        lock.unlock()
        deliver(&finished, &notices, to: handler)
        for done in released { done() }
    }

    /// Whether a turn has anything to do besides the sweep. Under the lock.
    var hasWork: Bool {
        !ready.isEmpty || !active.isEmpty || !pendingNotices.isEmpty || control.hasWork
    }

    /// One turn of the stepping loop, on the engine thread or inline on a caller's (`turnInline`):
    /// control requests, the sweep when due, the quick jobs at the head of ready streams, one
    /// batched step of the active ones, and the completions and notices of all that. Called and
    /// returns with the lock held; only one thread turns at a time (`turner`).
    private func turn(inline: Bool) {
        if takeControl(into: &turnCallbacks) {
            precondition(!inline, "an inline turn never takes control requests")
            lock.unlock()
            for callback in turnCallbacks { callback() }
            hangForever()
        }
        let now = Moment.now()
        if now.uptime >= nextSweep {
            sweep(at: now)
            nextSweep = now.uptime + (releases.isEmpty ? options.sweepInterval : Self.releasePollInterval)
        }
        swap(&turnAdvancing, &ready)
        for record in turnAdvancing {
            record.needsAdvance = false
            advance(record, at: now, finished: &turnFinished)
        }
        turnAdvancing.removeAll(keepingCapacity: true)
        selectRows()
        swap(&turnNotices, &pendingNotices)
        let handler = noticeHandler
        lock.unlock()

        deliver(&turnFinished, &turnNotices, to: handler)
        for callback in turnCallbacks { callback() }
        turnCallbacks.removeAll(keepingCapacity: true)
        if !rows.isEmpty { stepRows() }

        lock.lock()
        if !rows.isEmpty {
            if inline { stepsInline += 1 }
            let absorbed = commitRows()
            lock.unlock()
            recordStep(absorbed: absorbed)
            lock.lock()
        }
    }

    /// Whether the caller that is about to queue a job on `record` may run the engine's turns
    /// itself (`turnInline`) instead of handing them to the engine thread: nothing else is to
    /// be done (no stream ready or active, no notices or control requests), nobody is turning,
    /// and the job will be at the head of its stream's queue. Claims the turns when so, before
    /// the job is queued, so that queuing it does not wake the engine thread. Under the lock.
    func claimInline(for record: StreamRecord) -> Bool {
        guard options.inlineTurns > 0, phase == .running, turner == .nobody, record.jobs.isEmpty, !hasWork else { return false }
        turner = .caller
        return true
    }

    /// Runs the engine's turns on the calling thread, after `claimInline` and the job's
    /// submission: until the job's stream has nothing more to do, at most
    /// `EngineOptions.inlineTurns` turns (a 1-token feed takes two: its step, then its
    /// completion), then leaves what is left, if anything, to the engine thread. So a lone
    /// client's request costs no hand-off to the engine thread and back (docs/ENGINE.md,
    /// "Inline turns"); while other streams are busy every request goes through the engine
    /// thread and is batched as before. The results are the same either way: one thread turns
    /// at a time, with the same stepper, in the same order.
    func turnInline() {
        lock.lock()
        defer { lock.unlock() }
        precondition(turner == .caller, "turnInline() without claimInline")
        for _ in 0..<options.inlineTurns {
            guard phase == .running, !control.hasWork else { break }
            turn(inline: true)
            if ready.isEmpty && active.isEmpty { break }
        }
        turner = .nobody
        // What is left (a longer request, another client's, a control request), or a stop
        // waiting for this turn to end: the engine thread takes over.
        if hasWork || phase != .running { lock.broadcast() }
    }

    /// TEST ONLY (`StreamEngine.hangForTesting`): the thread never turns again.
    private func hangForever() -> Never {
        while true { sleep(3600) }
    }

    private func deliver(_ finished: inout [Finished], _ notices: inout [(StreamNotice, [ClientID])],
                         to handler: (@Sendable (StreamNotice, [ClientID]) -> Void)?) {
        for (completion, result) in finished { completion(result) }
        finished.removeAll(keepingCapacity: true)
        if let handler { for (notice, clients) in notices { handler(notice, clients) } }
        notices.removeAll(keepingCapacity: true)
    }

    /// Drops every stream and fails every job. Under the lock.
    private func failEverything(into finished: inout [Finished]) {
        for record in registry.removeAll() {
            for job in record.jobs { if let completion = job.completion { finished.append((completion, .failure(.shuttingDown))) } }
            record.jobs = []
            record.isActive = false
            record.needsAdvance = false
        }
        ready = []
    }

    /// Moves streams left over the bound to the store when it may have room again (`relieve`),
    /// and removes streams idle for longer than the timeout, telling their subscribers. Under the lock.
    private func sweep(at now: Moment) {
        processReleases(into: &turnCallbacks)
        relieve(at: now)
        guard let timeout = options.idleTimeout else { return }
        for record in registry.idle(before: now.uptime - timeout)
        where record.subscribers.isDisjoint(with: options.clientsExemptFromExpiry) {
            metrics.streamsExpired.increment()
            if store != nil {
                moveToStore(record)  // nothing is lost: no notice
                continue
            }
            let message = "stream \(EngineError.quoted(record.name)) expired after \(Self.seconds(timeout)) without activity"
            pendingNotices.append((StreamNotice(stream: record.name, kind: .expired, message: message), record.subscribers.sorted()))
            registry.remove(record)
        }
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }

    // MARK: One batched step

    /// Picks the rows of the next step, fairly. First the streams whose head job has taken
    /// fewer than `promptRows` rows (a new or short request, the start of each piece of a long
    /// feed): at most `promptRowsPerStep`, those with the fewest rows taken first, in turn among
    /// equals. Then the streams further into long jobs, in turn: at most `bulkRowsBesidePrompt`
    /// beside prompt rows, so that a short request's steps stay short, else up to `maxBatch`.
    /// Each stream takes at most one row, so its tokens stay in order. Under the lock (a token
    /// log may be extending a feed's durable range).
    private func selectRows() {
        rows.removeAll(keepingCapacity: true)
        let n = active.count
        guard n > 0 else { return }
        let start = rotation % n
        var next = 0  // where the next step's turn starts, when not every stream fits
        promptIndices.removeAll(keepingCapacity: true)
        for i in 0..<n {
            let index = (start + i) % n
            if active[index].jobs[0].rowsTaken < options.promptRows { promptIndices.append(index) }
        }
        let promptLimit = min(options.maxBatch, options.promptRowsPerStep)
        if promptIndices.count > promptLimit {
            // Fewest rows taken first; the sort is stable, so equals keep their turn order.
            let taken = promptIndices.map { active[$0].jobs[0].rowsTaken }
            let order = taken.indices.sorted { taken[$0] < taken[$1] || (taken[$0] == taken[$1] && $0 < $1) }
            promptIndices = order.prefix(promptLimit).map { promptIndices[$0] }
        }
        for index in promptIndices {
            take(active[index])
            next = (index + 1) % n
        }
        let prompt = rows.count
        let limit = prompt > 0 ? min(options.maxBatch, prompt + options.bulkRowsBesidePrompt) : options.maxBatch
        if active.count > prompt {
            for i in 0..<n where rows.count < limit {
                let index = (start + i) % n
                guard active[index].jobs[0].rowsTaken >= options.promptRows else { continue }
                take(active[index])
                next = (index + 1) % n
            }
        }
        rotation = rows.count < n ? next : 0
    }

    /// Adds the row of `record`'s head job to the step. Under the lock.
    private func take(_ record: StreamRecord) {
        let job = record.jobs[0]
        guard let run = job.steppingRun else {
            preconditionFailure("stream '\(record.name)' is active but its head job is \(job.state)")
        }
        let i = rows.count
        switch run {
        case .predict(let prediction):
            batchTokens[i] = prediction.lastToken
            rows.append(Row(record: record, job: job, run: run, state: prediction.state.p))
        case .feed(let feed):
            batchTokens[i] = feed.tokens[feed.cursor]
            rows.append(Row(record: record, job: job, run: run, state: record.state.p, watchers: feed.silent ? [] : record.watchers))
        }
    }

    /// Gathers the rows' states, steps them together, scatters the states back and turns each
    /// row's logits into an event or a predicted token. Engine thread, without the lock.
    private func stepRows() {
        let c = model.config
        let H = c.hiddenSize, V = vocabularySize, blocks = c.layers * c.cell.stateVectors
        let stride = options.maxBatch * H
        let base = batch.storage.p
        // Row b's block j (layer j / stateVectors, h or c) lives at base + j·maxBatch·H + b·H.
        for (b, row) in rows.enumerated() {
            for j in 0..<blocks { (base + j * stride + b * H).update(from: row.state + j * H, count: H) }
        }
        let logits = stepper.step(tokens: UnsafeBufferPointer(rebasing: batchTokens[0..<rows.count]), state: batch)
        for (b, row) in rows.enumerated() {
            for j in 0..<blocks { (row.state + j * H).update(from: base + j * stride + b * H, count: H) }
            let z = logits + b * V  // (V): this row's logits
            switch row.run {
            case .predict(let run):
                logSoftmax(z, count: V, into: run.logProbs.p)
                run.choose()
            case .feed(let run):
                let record = row.record, token = batchTokens[b]
                // The prediction made before this token arrived: the previous step's row.
                let logprob: Float? = record.offset > 0 ? record.logProbs[Int(token)] : nil
                logSoftmax(z, count: V, into: record.logProbs.p)
                run.stepLogprob = logprob
                if run.silent { continue }
                let next = topK(record.logProbs.p, count: V, k: run.topK)
                let units = run.units.isEmpty ? [] : run.units.map { row.state[$0] }
                let event = TokenEvent(stream: record.name, offset: record.offset + 1, token: token,
                                       logprob: logprob, next: next, units: units)
                run.events.append(event)
                for watcher in row.watchers {
                    var copy = event
                    if watcher.topK != run.topK { copy.next = topK(record.logProbs.p, count: V, k: watcher.topK) }
                    copy.units = watcher.offsets.map { row.state[$0] }
                    watcher.deliver(copy)
                }
            }
        }
    }

    /// Counts the step, advances each row's stream and job, and retires streams whose head job
    /// needs no more rows. Under the lock.
    private func commitRows() -> Int {
        var absorbed = 0, replayed = 0
        for row in rows {
            row.job.rowsTaken += 1
            guard case .feed(let run) = row.run else { continue }
            let record = row.record
            record.offset += 1
            if let lp = run.stepLogprob {
                record.scoredTokens += 1
                record.lossSum -= Double(lp)
            }
            run.cursor += 1
            // A restore's silent replay steps tokens counted when they were fed.
            if run.silent { replayed += 1 } else { absorbed += 1 }
        }
        stepsTaken += 1
        rowsStepped += rows.count
        tokensAbsorbed += absorbed
        tokensReplayed += replayed
        meter.add(absorbed, at: ProcessInfo.processInfo.systemUptime - startUptime)
        var kept = 0
        for i in active.indices {
            let record = active[i]
            if record.jobs.first?.steppingRun != nil {
                active[kept] = record
                kept += 1
            } else {
                record.isActive = false
                markReady(record)
            }
        }
        active.removeLast(active.count - kept)
        return absorbed
    }

    /// Records the step just committed: its batch size, the tokens it absorbed and their
    /// surprisal (from the step's rows, which stay untouched until the next `selectRows`).
    /// Engine thread, without the lock.
    private func recordStep(absorbed: Int) {
        metrics.stepBatchSize.record(rows.count)
        guard absorbed > 0 else { return }
        metrics.tokensAbsorbed.increment(by: absorbed)
        for row in rows {
            guard case .feed(let run) = row.run, !run.silent, let logprob = run.stepLogprob else { continue }
            metrics.surprisal.record(Double(-logprob) / M_LN2)
        }
    }
}
