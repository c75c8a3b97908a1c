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
/// `kind`, `client`, `topK` and `completion` are fixed at submission; the progress fields are
/// the engine thread's, except `durableEnd`, `logging` and `logFailure`, which the token log's
/// completion also writes, under the lock.
final class Job: @unchecked Sendable {
    enum Kind {
        /// Tokenize with the stream's encoder, then absorb.
        case feedText([UInt8], flush: Bool)
        /// Absorb ids already checked against the vocabulary.
        case feedTokens([Int32])
        /// Continue a copy of the stream's state.
        case predict(PredictRequest)
        case reset
        case end
        /// Copy the stream (this job's) into `target`, whose head is a `forkBarrier`.
        case fork(target: StreamRecord)
        /// Holds a fork target's queue until the source's `fork` job has copied the state.
        case forkBarrier
        /// Brings a stream back from the store (the engine's own job, at the head of a stream
        /// that was not resident): load, apply the snapshot, absorb the replayed tail silently.
        case restore
        /// `info` on a stream that has to be restored first.
        case info
    }

    let kind: Kind
    /// The client that asked (subscribed to the stream); nil for the engine's own barrier jobs.
    let client: ClientID?
    /// k of the `next` list of every event (feeds only).
    let topK: Int
    let completion: JobCompletion?
    /// The submission created the stream; a feed that fails before absorbing anything drops it
    /// again, so that a rejected request leaves no trace.
    var createdStream = false
    /// Who submitted it (set at submission); a feed re-creating an ended stream gives it this owner.
    var caller = Caller.process

    var prepared = false
    /// Feed: the tokens to absorb, `cursor` of them done.
    var tokens: [Int32] = []
    var cursor = 0
    /// Feed: tokens[..<durableEnd] are in the token log (all of them when there is no log).
    var durableEnd = 0
    /// Feed: an append to the token log is in flight.
    var logging = false
    var logFailure: EngineError?
    var events: [TokenEvent] = []
    /// Feed or restore: the logprob of the row just stepped, for the counters.
    var stepLogprob: Float?
    /// Restore: absorb without making events (the replayed tail was acknowledged before).
    var silent = false
    /// Reset, end, fork with a store: the store's answer is awaited (`logging` while it is).
    var stored = false
    /// Queued behind a restore: the stream's owner was not known at submission, so access is
    /// checked when the job runs.
    var ownerUnchecked = false
    /// Restore: the store's answer, once it came.
    var loaded: Result<StoredStream?, EngineError>?
    /// Predict: the continuation being generated.
    var prediction: PredictionRun?

    init(kind: Kind, client: ClientID?, topK: Int = 0, completion: JobCompletion?) {
        self.kind = kind
        self.client = client
        self.topK = topK
        self.completion = completion
    }

    /// The head job wants a row in the next batched step.
    var wantsStep: Bool {
        switch kind {
        case .feedText, .feedTokens, .restore: prepared && logFailure == nil && cursor < durableEnd
        case .predict: prediction.map { !$0.isFinished } ?? false
        default: false
        }
    }
}
