import RecurCore

/// What a feed asks to absorb, before it is tokenized at the head of the stream's queue.
enum FeedInput {
    /// Tokenize with the stream's encoder, then absorb.
    case text([UInt8], flush: Bool)
    /// Absorb ids already checked against the vocabulary.
    case tokens([Int32])
}

/// A feed's state machine.
///
///     waiting ──prepared──▶ stepping ◀──logged── awaitingStore
///        │                    │  └──segment not durable──▶ │
///        ▼                    ▼ (all absorbed)             ▼ (store failed)
///     (rejected)            done                        failed
enum FeedState: CustomStringConvertible {
    /// Queued; tokenized when it reaches the head of the queue. `createdStream`: the
    /// submission created the stream, so a feed that fails before absorbing anything drops it.
    case waiting(FeedInput, createdStream: Bool)
    /// The store is logging `run.tokens[run.cursor..<end]`; none of it is stepped before it answers.
    case awaitingStore(FeedRun, end: Int)
    /// Tokens `run.cursor..<run.durableEnd` may be stepped.
    case stepping(FeedRun)
    /// The store could not log a segment; the tokens absorbed before it stay absorbed.
    case failed(EngineError, FeedRun)

    var description: String {
        switch self {
        case .waiting: "waiting"
        case .awaitingStore(let run, let end): "awaiting the store (\(run.cursor)..<\(end) of \(run.tokens.count))"
        case .stepping(let run): "stepping (\(run.cursor) of \(run.tokens.count), durable \(run.durableEnd))"
        case .failed(let error, _): "failed (\(error.kind))"
        }
    }

    /// What the engine does next for a feed at the head of its queue.
    enum Action {
        /// Take a row in the next step.
        case step
        /// Ask the store to log `run.tokens[range]`.
        case log(FeedRun, Range<Int>)
        /// The store is working.
        case wait
        case finish(Result<JobOutput, EngineError>)
    }

    /// Decides the next action of a prepared feed; a segment that is not durable yet moves it
    /// to `awaitingStore`.
    mutating func next(segment: Int) -> Action {
        switch self {
        case .waiting:
            preconditionFailure("a feed was run before it was prepared")
        case .stepping(let run):
            if run.pendingUnlogged {
                // No token, but the tokenizer now holds more of the text: log that, so an
                // acknowledged feed survives a crash even when it completed no token.
                self = .awaitingStore(run, end: run.cursor)
                return .log(run, run.cursor..<run.cursor)
            }
            if run.cursor == run.tokens.count { return .finish(.success(.events(run.events))) }
            if run.cursor < run.durableEnd { return .step }
            let end = min(run.tokens.count, run.cursor + segment)
            self = .awaitingStore(run, end: end)
            return .log(run, run.cursor..<end)
        case .awaitingStore:
            return .wait
        case .failed(let error, _):
            return .finish(.failure(error))
        }
    }

    /// The store logged the segment: it may be stepped. Under the lock.
    mutating func logged(failure: EngineError?) {
        guard case .awaitingStore(let run, let end) = self else {
            preconditionFailure("the store answered an append for a feed that is \(self)")
        }
        if let failure {
            self = .failed(failure, run)
        } else {
            run.durableEnd = end
            run.pendingUnlogged = false
            self = .stepping(run)
        }
    }
}

/// The tokens of a feed (or of a restore's replayed tail) being absorbed, stepped one per
/// batch; a class, so that the engine thread advances it in place.
final class FeedRun {
    let tokens: [Int32]
    /// k of each event's `next` list.
    let topK: Int
    /// (state offsets) The hidden units each event carries; usually none.
    let units: [Int]
    /// A restore's replay: absorbed without events (they were acknowledged before).
    let silent: Bool
    /// The feed created the stream (or re-created it after an end).
    let createdStream: Bool
    /// Tokens absorbed.
    var cursor = 0
    /// tokens[..<durableEnd] may be stepped (they are logged, or nothing is logged).
    var durableEnd: Int
    var events: [TokenEvent] = []
    /// The logprob of the row just stepped, for the counters.
    var stepLogprob: Float?
    /// A feed that completes no token but changes what the tokenizer holds back, on a store
    /// that logs: it logs an empty segment with the held bytes before it is acknowledged.
    var pendingUnlogged = false

    init(tokens: [Int32], topK: Int, units: [Int] = [], silent: Bool, createdStream: Bool, durableEnd: Int) {
        precondition(durableEnd >= 0 && durableEnd <= tokens.count, "durable end \(durableEnd) outside 0...\(tokens.count)")
        self.tokens = tokens
        self.topK = topK
        self.units = units
        self.silent = silent
        self.createdStream = createdStream
        self.durableEnd = durableEnd
        if !silent { events.reserveCapacity(tokens.count) }
    }

    var wantsStep: Bool { cursor < durableEnd }
    var isFinished: Bool { cursor == tokens.count }
}
