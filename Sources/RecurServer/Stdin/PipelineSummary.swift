import RecurEngine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the stdin pipeline absorbed, for the summary it prints at the end.
struct PipelineSummary: Sendable, Equatable {
    var tokens = 0
    var scored = 0
    /// Sum of -log p over scored tokens (nats).
    var nats = 0.0
    var streams: Set<String> = []

    mutating func add(_ events: [TokenEvent]) {
        tokens += events.count
        for event in events {
            if let lp = event.logprob {
                scored += 1
                nats -= Double(lp)
            }
        }
        if let stream = events.first?.stream { streams.insert(stream) }
    }

    /// One line: tokens, streams, mean loss (nats/token), bits/token, perplexity.
    var line: String {
        let streamText = "\(streams.count) stream\(streams.count == 1 ? "" : "s")"
        guard scored > 0 else {
            return "recurd: \(tokens) token\(tokens == 1 ? "" : "s") in \(streamText), none scored (a stream's first token has no prediction)"
        }
        let loss = nats / Double(scored)
        return "recurd: \(tokens) tokens (\(scored) scored) in \(streamText): loss \(Self.fixed(loss, 6)) nats/token, "
            + "\(Self.fixed(loss / log(2.0), 6)) bits/token, perplexity \(Self.fixed(exp(loss), 4))"
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
