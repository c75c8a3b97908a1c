/// Where a durable engine writes tokens before absorbing them (the write-ahead log of the
/// durable-streams issue). See docs/ENGINE.md, "Durability".
///
/// When an engine has a log, every segment of a feed (at most `maxTokensPerFeedJob` tokens) is
/// appended, and the append awaited, before any of its tokens is stepped or acknowledged.
/// Appends of one stream are never concurrent and arrive in the stream's order.
public protocol TokenLog: Sendable {
    /// Records that `stream` is about to absorb `tokens`; `offset` is how many tokens the stream
    /// had absorbed before them (so `tokens[0]` becomes offset + 1; 0 after a creation or reset).
    /// Throwing fails the feed with `EngineError.internal`; tokens of earlier segments stay absorbed.
    func append(stream: String, offset: Int, tokens: [Int32]) async throws
}
