import RecurCore
import RecurEngine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A stream's counters, as `info` reports them or as the pipeline counts events.
struct StreamTally: Sendable, Equatable {
    var tokens = 0
    var scored = 0
    /// Sum of -log p over scored tokens (nats).
    var nats = 0.0
    /// When the stream was created (from `info`; nil for counted events).
    var created: Double?

    /// Nothing absorbed.
    static let zero = StreamTally()

    /// The counters of `info` (since the stream was created or last reset).
    init(_ info: StreamInfo) {
        tokens = info.offset
        scored = info.scoredTokens
        nats = (info.meanLoss ?? 0) * Double(info.scoredTokens)
        created = info.created
    }

    init() {}

    /// Adds events' tokens and log-probabilities.
    mutating func add(_ events: [TokenEvent]) {
        tokens += events.count
        for event in events {
            if let lp = event.logprob {
                scored += 1
                nats -= Double(lp)
            }
        }
    }

    /// Adds another tally's counts.
    mutating func add(_ other: StreamTally) {
        tokens += other.tokens
        scored += other.scored
        nats += other.nats
    }

    /// What the stream absorbed between `earlier` and `self`: the difference, or all of
    /// `self` when the stream restarted in between (re-created, or reset: fewer tokens).
    /// An `earlier` without a creation time (the stream did not exist yet) compares counts only.
    func since(_ earlier: StreamTally) -> StreamTally {
        let sameStream = earlier.created == nil || created == earlier.created
        guard sameStream, tokens >= earlier.tokens, scored >= earlier.scored else {
            var all = self
            all.created = nil
            return all
        }
        var delta = StreamTally()
        delta.tokens = tokens - earlier.tokens
        delta.scored = scored - earlier.scored
        delta.nats = max(0, nats - earlier.nats)
        return delta
    }
}

/// What the stdin pipeline's streams absorbed while it ran and what it skipped, for the
/// summary it prints at the end.
struct PipelineSummary: Sendable, Equatable {
    var tokens = 0
    var scored = 0
    /// Sum of -log p over scored tokens (nats).
    var nats = 0.0
    var streams = 0
    /// Pieces of input the model cannot tokenize, left out.
    var skipped = 0
    /// What a skipped piece is: "character" (char models) or "word" (word models).
    var skippedUnit = "character"
    /// Tokens the engine refused (each refusal was reported when it happened).
    var refused = 0

    /// Counts one stream's tokens.
    mutating func add(stream tally: StreamTally) {
        tokens += tally.tokens
        scored += tally.scored
        nats += tally.nats
        streams += 1
    }

    /// The summary: tokens, streams, mean loss (nats/token), bits/token, perplexity; then,
    /// when text was skipped, how much.
    var lines: [String] {
        let streamText = Self.count(streams, "stream")
        var lines: [String]
        if scored > 0 {
            let loss = nats / Double(scored)
            lines = ["recurd: \(Self.count(tokens, "token")) (\(scored) scored) in \(streamText): loss \(Self.fixed(loss, 6)) nats/token, "
                + "\(Self.fixed(loss / log(2.0), 6)) bits/token, perplexity \(Self.fixed(exp(loss), 4))"]
        } else {
            lines = ["recurd: \(Self.count(tokens, "token")) in \(streamText), none scored (a stream's first token has no prediction)"]
        }
        if skipped > 0 {
            lines.append("recurd: skipped \(Self.count(skipped, skippedUnit)) that the model's vocabulary lacks")
        }
        if refused > 0 {
            lines.append("recurd: \(Self.count(refused, "token")) not absorbed: the engine refused them (see the errors above)")
        }
        return lines
    }

    /// "1 token", "2 tokens", "0 streams".
    static func count(_ n: Int, _ noun: String) -> String {
        "\(n) \(noun)\(n == 1 ? "" : "s")"
    }

    /// `x` with `digits` decimals.
    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite, abs(x) < 1e15 else { return x.description }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(x) * scale).rounded()
        let whole = (scaled / scale).rounded(.down)
        let fraction = String(Int(scaled - whole * scale))
        return (x < 0 ? "-" : "") + String(Int(whole)) + "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
}
