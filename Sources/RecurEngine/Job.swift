import RecurCore

/// What a finished job hands back to its caller.
enum JobOutput: Sendable {
    case events([TokenEvent])
    case predictions([TokenProbability])
    case info(StreamInfo)
    case done
}

/// How a job reports back; called outside the engine lock, exactly once.
typealias JobCompletion = @Sendable (Result<JobOutput, EngineError>) -> Void

/// One request on one stream, waiting in the stream's FIFO and run by the engine thread.
/// `client`, `topK` and `completion` are fixed at submission; `state` is the job's own state
/// machine (one enum per kind, `JobState`), changed only under the lock: by the engine thread,
/// and by a store's completion for the states that await the store.
final class Job: @unchecked Sendable {
    /// Whether the job's caller may use the stream, and so whether it is subscribed to it.
    enum Access: Equatable {
        /// Queued on a stream whose owner was not known at submission (loading from the store,
        /// or gone and re-created by an earlier feed): checked before the job changes anything.
        case unchecked
        /// Checked (or the job's own feed created the stream); the client is subscribed.
        case granted
    }

    /// The client that asked (subscribed to the stream once granted); nil for the engine's own jobs.
    let client: ClientID?
    /// k of the `next` list of every event (feeds only).
    let topK: Int
    /// (state offsets) The hidden units each event carries (feeds only; usually none).
    let units: [Int]
    let completion: JobCompletion?
    /// (lock) Who submitted it (set at submission).
    var caller = Caller.process
    /// (lock)
    var access = Access.granted
    /// (lock)
    private(set) var state: JobState
    /// (lock) Rows this job has taken in steps: below `EngineOptions.promptRows` its rows come
    /// first (`EngineCore.selectRows`).
    var rowsTaken = 0

    init(_ state: JobState, client: ClientID?, topK: Int = 0, units: [Int] = [], completion: JobCompletion?) {
        self.state = state
        self.client = client
        self.topK = topK
        self.units = units
        self.completion = completion
    }

    /// Moves to `next`; the transitions themselves live with each state machine, which check
    /// the state they leave. Under the lock.
    func enter(_ next: JobState) { state = next }

    /// The run whose next token is stepped in the coming batch, if the job wants a row.
    var steppingRun: StepRun? {
        switch state {
        case .feed(.stepping(let run)), .restore(.replaying(let run)):
            run.wantsStep ? .feed(run) : nil
        case .predict(.stepping(let run)):
            run.isFinished ? nil : .predict(run)
        default:
            nil
        }
    }

    /// Advances the record a reset, end or fork awaits from the store (`StoreStep.asked`,
    /// `answered`). Under the lock.
    func updateStoreStep(_ change: (inout StoreStep) -> Void) {
        switch state {
        case .reset(var step):
            change(&step)
            state = .reset(step)
        case .end(var step):
            change(&step)
            state = .end(step)
        case .fork(.copying(let target, var step)):
            change(&step)
            state = .fork(.copying(target: target, step))
        default:
            preconditionFailure("a store record for a job that is \(state)")
        }
    }

    /// The store record a reset, end or fork awaits.
    var storeStep: StoreStep {
        switch state {
        case .reset(let step), .end(let step), .fork(.copying(_, let step)): step
        default: preconditionFailure("a store record for a job that is \(state)")
        }
    }

    /// `FeedState.next(segment:)` of a prepared feed. Under the lock.
    func nextFeedAction(segment: Int) -> FeedState.Action {
        guard case .feed(var feed) = state else { preconditionFailure("a feed action for a job that is \(state)") }
        let action = feed.next(segment: segment)
        state = .feed(feed)
        return action
    }

    /// `FeedState.logged(failure:)`. Under the lock.
    func feedLogged(failure: EngineError?) {
        guard case .feed(var feed) = state else { preconditionFailure("a logged segment for a job that is \(state)") }
        feed.logged(failure: failure)
        state = .feed(feed)
    }

    /// `RestoreState.answered`. Under the lock.
    func restoreAnswered(_ result: Result<StoredStream?, EngineError>) {
        guard case .restore(var restore) = state else { preconditionFailure("a load answer for a job that is \(state)") }
        restore.answered(result)
        state = .restore(restore)
    }

    /// Whether running the job is activity on its stream (for `lastActivity`, expiry and
    /// eviction order): a granted request that uses the stream, not an `info` (a read, like
    /// the quick one) nor the engine's own restore or barrier.
    var isActivity: Bool {
        guard access == .granted, client != nil else { return false }
        switch state {
        case .info, .restore, .forkBarrier: return false
        default: return true
        }
    }

    /// The feed made its stream (at submission, or by re-creating it after an end), so failing
    /// before absorbing anything drops it again.
    var createdStream: Bool {
        switch state {
        case .feed(.waiting(_, let created)): created
        case .feed(.stepping(let run)), .feed(.awaitingStore(let run, _)), .feed(.failed(_, let run)): run.createdStream
        default: false
        }
    }
}

/// A job's state: one machine per kind of request (see each machine's type).
enum JobState: CustomStringConvertible {
    case feed(FeedState)
    case predict(PredictState)
    case reset(StoreStep)
    case end(StoreStep)
    case fork(ForkState)
    /// Holds a fork target's queue until the source's `fork` job has copied the state.
    case forkBarrier
    /// Brings a stream back from the store (the engine's own job, at the head of a `.loading`
    /// stream).
    case restore(RestoreState)
    /// `info` on a stream that had to be loaded first.
    case info

    var description: String {
        switch self {
        case .feed(let s): "feed \(s)"
        case .predict(let s): "predict \(s)"
        case .reset(let s): "reset \(s)"
        case .end(let s): "end \(s)"
        case .fork(let s): "fork \(s)"
        case .forkBarrier: "fork barrier"
        case .restore(let s): "restore \(s)"
        case .info: "info"
        }
    }
}

/// The row a job contributes to a step.
enum StepRun {
    /// A feed's or a restore's next token, absorbed into the stream.
    case feed(FeedRun)
    /// A prediction's last token, stepped in its private state.
    case predict(PredictionRun)
}
