import RecurCore

/// A predict's state machine: `waiting` until it reaches the head of the queue, then
/// `stepping` its private copy until it has its tokens.
enum PredictState: CustomStringConvertible {
    case waiting(PredictRequest)
    case stepping(PredictionRun)

    var description: String {
        switch self {
        case .waiting: "waiting"
        case .stepping(let run): "stepping (\(run.results.count) of \(run.request.count))"
        }
    }
}

/// A record the store must take before a reset, end or fork takes effect.
///
///     pending ──asked──▶ awaiting ──answered──▶ recorded | failed
enum StoreStep: CustomStringConvertible {
    /// Not asked yet.
    case pending
    /// The store is writing it.
    case awaiting
    case recorded
    case failed(EngineError)

    var description: String {
        switch self {
        case .pending: "pending"
        case .awaiting: "awaiting the store"
        case .recorded: "recorded"
        case .failed(let error): "failed (\(error.kind))"
        }
    }

    /// The request was handed to the store.
    mutating func asked() {
        guard case .pending = self else { preconditionFailure("a store record asked for twice (\(self))") }
        self = .awaiting
    }

    mutating func answered(_ failure: EngineError?, job: Job) {
        guard case .awaiting = self else { preconditionFailure("the store answered a record that is \(self) (\(job.state))") }
        self = failure.map { .failed($0) } ?? .recorded
    }
}

/// A fork's state machine (the job runs on the source's queue).
enum ForkState: CustomStringConvertible {
    /// The source is loading from the store: the target is registered once the source's owner
    /// is known and allows the fork.
    case awaitingOwner(targetName: String)
    /// The target is registered, its queue held by a barrier until the copy; with a store, the
    /// copy is recorded first.
    case copying(target: StreamRecord, StoreStep)

    var description: String {
        switch self {
        case .awaitingOwner(let name): "awaiting the source's owner (into '\(name)')"
        case .copying(let target, let step): "copying into '\(target.name)', \(step)"
        }
    }
}

/// A restore's state machine (the head of a `.loading` stream's queue).
///
///     waiting ──load──▶ loading ──answer──▶ loaded ──applied──▶ replaying ──▶ done
enum RestoreState: CustomStringConvertible {
    /// The load is not asked yet. `requestedBy`: the uid that owns the stream if the store does
    /// not say (a snapshot without an owner).
    case waiting(requestedBy: UInt32)
    /// The store reads it, off the lock.
    case loading(requestedBy: UInt32)
    /// The store's answer, applied by the engine thread.
    case loaded(Result<StoredStream?, EngineError>, requestedBy: UInt32)
    /// Absorbing the logged tail after the snapshot, silently.
    case replaying(FeedRun)

    var description: String {
        switch self {
        case .waiting: "waiting"
        case .loading: "loading"
        case .loaded: "loaded"
        case .replaying(let run): "replaying (\(run.cursor) of \(run.tokens.count))"
        }
    }

    /// The store answered the load. Under the lock.
    mutating func answered(_ result: Result<StoredStream?, EngineError>) {
        guard case .loading(let uid) = self else { preconditionFailure("the store answered a load for a restore that is \(self)") }
        self = .loaded(result, requestedBy: uid)
    }
}
