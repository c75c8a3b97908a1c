import Synchronization

/// A live copy of one stream's token events for an observer that does not feed it (the live
/// view of `recurd --http`): every token the stream absorbs after `StreamEngine.watch` returns,
/// whoever feeds it, with the watcher's own k and hidden units.
///
/// The engine never waits for a watcher and never wakes one: it appends each event to the
/// watch's buffer under a lock and goes on, so a watched stream's feeds pay for the event's
/// copy and nothing else. The watcher takes what is waiting when it likes (`take`): the live
/// view does so once per frame, a few dozen times a second, and writes the batch at once. A
/// watcher that lets `capacity` events pile up is **cut off**: the events held stay takeable,
/// then the watch reports `end` `.overflow` (a watcher that reconnects continues from then on;
/// the tokens in between are not sent to it). The stream leaving memory (ended, expired,
/// evicted, moved to the state store, the daemon stopping) ends it too. `cancel()` detaches it.
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
    /// Events held for the watcher at most.
    public let capacity: Int

    /// (state offsets) Where each of `units` lives in a stream's state vector.
    let offsets: [Int]
    /// The events not yet taken, oldest first, and why the watch ended (nil while it runs).
    private struct Held {
        var events: [TokenEvent] = []
        var end: End?
    }
    private let held = Mutex(Held())
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
        self.detach = Mutex(detach)
    }

    /// Why the watch ended; nil while it runs. Events taken before it ended may still wait.
    public var end: End? { held.withLock { $0.end } }

    /// Takes every event waiting, oldest first, by swapping them with `spare` (which must be
    /// empty; its storage is reused for the next events, so a watcher that takes in a loop does
    /// not allocate). Returns why the watch ended when it has: after these events there will be
    /// no more. Never blocks for longer than the engine appending one event.
    public func take(swapping spare: inout [TokenEvent]) -> End? {
        precondition(spare.isEmpty, "take(swapping:) needs an empty array to swap in")
        return held.withLock { held in
            swap(&held.events, &spare)
            return held.end
        }
    }

    /// Stops the watch: the engine forgets it, the events not taken are dropped and `end` is
    /// `.cancelled`.
    public func cancel() {
        finish(.cancelled)
    }

    /// Appends one event without waiting or waking anyone. False when the watch has ended (now,
    /// because `capacity` events were waiting, or before). Engine thread.
    @discardableResult
    func deliver(_ event: TokenEvent) -> Bool {
        let full: Bool? = held.withLock { held in
            guard held.end == nil else { return nil }
            guard held.events.count < capacity else { return true }
            held.events.append(event)
            return false
        }
        switch full {
        case false?: return true
        case true?: finish(.overflow)
        case nil: break
        }
        return false
    }

    /// Ends the watch with `reason` (the first reason counts) and detaches it from the engine.
    func finish(_ reason: End) {
        let first = held.withLock { held -> Bool in
            guard held.end == nil else { return false }
            held.end = reason
            if reason == .cancelled { held.events = [] }
            return true
        }
        guard first else { return }
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
