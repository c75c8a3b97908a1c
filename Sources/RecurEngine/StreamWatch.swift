import Synchronization

/// A live copy of one stream's token events for an observer that does not feed it (the live
/// view of `recurd --http`): every token the stream absorbs after `StreamEngine.watch` returns,
/// whoever feeds it, with the watcher's own k and hidden units.
///
/// The engine never waits for a watcher: it hands each event over without blocking, into a
/// buffer of at most `capacity` events. A watcher that falls that far behind is **cut off**:
/// `events` ends and `end` is `.overflow` (a watcher that reconnects continues from then on; the
/// tokens in between are not sent to it). The stream leaving memory (ended, expired, evicted,
/// moved to the state store, the daemon stopping) ends it too. `cancel()` detaches it.
public final class StreamWatch: Sendable {
    /// Why a watch ended.
    public enum End: Sendable, Equatable {
        /// The watcher did not take its events fast enough: `capacity` were waiting.
        case overflow
        /// The stream left memory (the sentence says how); watching it again needs a new watch.
        case streamGone(String)
        /// `cancel()` was called.
        case cancelled
    }

    /// The stream watched.
    public let stream: String
    /// k of each event's `next` list.
    public let topK: Int
    /// The hidden units whose values each event carries (`TokenEvent.units`), as asked.
    public let units: [Int]
    /// What a watch delivers.
    public enum Item: Sendable {
        /// A token the stream absorbed.
        case event(TokenEvent)
        /// `tick()` was called: nothing happened, but a consumer that writes somewhere can
        /// check that its reader is still there.
        case tick
    }

    /// The events, in the stream's order, and ticks; ends when the watch ends.
    public let events: AsyncStream<Item>
    /// Events held for the watcher at most.
    public let capacity: Int

    /// (state offsets) Where each of `units` lives in a stream's state vector.
    let offsets: [Int]
    private let continuation: AsyncStream<Item>.Continuation
    private let ending = Mutex<End?>(nil)
    private let detach: Mutex<(@Sendable (StreamWatch) -> Void)?>
    private let ended: @Sendable (End) -> Void

    init(stream: String, topK: Int, units: [Int], offsets: [Int], capacity: Int,
         ended: @escaping @Sendable (End) -> Void, detach: @escaping @Sendable (StreamWatch) -> Void) {
        self.ended = ended
        self.stream = stream
        self.topK = topK
        self.units = units
        self.offsets = offsets
        self.capacity = capacity
        (events, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(capacity))
        self.detach = Mutex(detach)
    }

    /// Why the watch ended; nil while it runs.
    public var end: End? { ending.withLock { $0 } }

    /// Stops the watch: the engine forgets it and `events` ends.
    public func cancel() {
        finish(.cancelled)
    }

    /// Hands one event over without waiting. False when the watch has ended (now or before).
    /// Engine thread.
    @discardableResult
    func deliver(_ event: TokenEvent) -> Bool {
        guard end == nil else { return false }
        switch continuation.yield(.event(event)) {
        case .enqueued: return true
        case .dropped: finish(.overflow)
        case .terminated: finish(.cancelled)
        @unknown default: finish(.cancelled)
        }
        return false
    }

    /// Adds a `.tick` to `events` (nothing when the buffer is full or the watch has ended).
    public func tick() {
        guard end == nil else { return }
        _ = continuation.yield(.tick)
    }

    /// Ends the watch with `reason` (the first reason counts) and detaches it from the engine.
    func finish(_ reason: End) {
        let first = ending.withLock { current -> Bool in
            guard current == nil else { return false }
            current = reason
            return true
        }
        guard first else { return }
        continuation.finish()
        ended(reason)
        if let detach = detach.withLock({ d -> (@Sendable (StreamWatch) -> Void)? in
            defer { d = nil }
            return d
        }) { detach(self) }
    }

    /// Ends the watch without calling back into the engine (which is removing it itself).
    func finishDetached(_ reason: End) {
        detach.withLock { $0 = nil }
        finish(reason)
    }
}
