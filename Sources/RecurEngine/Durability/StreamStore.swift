/// Where a durable engine keeps its streams (the state store): a write-ahead token log,
/// checkpoints, and the streams evicted from memory. See docs/ENGINE.md, "Durability".
///
/// Every method is called by the engine with its lock held, so none may block or call back
/// synchronously: work is queued, and completions are called later from another thread. Calls
/// for one stream arrive in the stream's order and the store applies them in that order.
public protocol StreamStore: AnyObject, Sendable {
    /// True when feeds are logged before they are absorbed (durability strict or batched);
    /// false when state is saved only by checkpoints (at eviction and graceful stop).
    var logsTokens: Bool { get }

    /// Write-ahead: `stream` is about to absorb `tokens` from `offset` (0 after a creation or
    /// reset); `pendingText` is what its tokenizer holds once they are absorbed; `owner` the
    /// stream's Unix user; `created` its creation time (seconds since 1970), which a stream
    /// rebuilt from its log alone keeps. The engine steps none of the tokens before `completion(nil)`.
    func append(stream: String, offset: Int, tokens: [Int32], pendingText: [UInt8], owner: UInt32, created: Double,
                completion: @escaping @Sendable ((any Error)?) -> Void)

    /// The stream starts over from `snapshot` (a reset: an empty snapshot; a fork target: the
    /// source's copy): its earlier log and checkpoint are replaced. `historyOf` names a fork's
    /// source whose logged tokens become the target's history too (for rebuilds under another
    /// model). Awaited by the engine before the reset or fork takes effect.
    func rebase(_ snapshot: StreamSnapshot, historyOf source: String?,
                completion: @escaping @Sendable ((any Error)?) -> Void)

    /// Forgets the stream (an `end`). Awaited before the end takes effect.
    func end(stream: String, completion: @escaping @Sendable ((any Error)?) -> Void)

    /// Saves a checkpoint (periodic, eviction, graceful stop); not awaited. `load` sees it at
    /// once, even before it is on disk.
    func checkpoint(_ snapshot: StreamSnapshot)

    /// Saves the checkpoint of a stream leaving memory (eviction, expiry) and says whether it is
    /// saved: the engine keeps the stream until `completion(nil)`, and keeps it resident (over
    /// its bound) after an error, so a stream is never lost to a store that cannot write.
    /// `load` sees the snapshot at once, even before it is on disk.
    func save(_ snapshot: StreamSnapshot, completion: @escaping @Sendable ((any Error)?) -> Void)

    /// Streams the store holds (answered from memory).
    var storedStreamCount: Int { get }

    /// Whether the store holds a stream of this name (answered from memory).
    func contains(stream: String) -> Bool

    /// The model serving from now on (a reload): stored states are judged by these hashes.
    func modelChanged(to fingerprint: ModelFingerprint)

    /// nil when this process serves `stream` now; otherwise why not, as a sentence for the
    /// client (a cluster node serves only the streams of the key groups it holds). Asked under
    /// the engine's lock before any request touches the stream: answered from memory.
    func refusal(for stream: String) -> String?

    /// The stored stream, or nil if there is none. Reads happen off the engine's lock.
    func load(stream: String, completion: @escaping @Sendable (Result<StoredStream?, any Error>) -> Void)
}

extension StreamStore {
    /// A store of one process serves every stream.
    public func refusal(for stream: String) -> String? { nil }
}
