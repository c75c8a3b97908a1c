/// One scored token: its log-probability given the tokens before it and the model's k most
/// probable guesses at that point.
public struct ScoredToken: Sendable, Equatable {
    /// Offset counting tokens from 1, as `score(_:perToken:)` reports it (the first scored is 2).
    public var offset: Int
    /// Natural log-probability, the number `recur eval --per-token` prints.
    public var logProb: Float
    public var top: [TokenProbability]
}

extension Evaluator {
    /// Scores `tokens` exactly as `score(_:perToken:)` does and keeps, for each scored token,
    /// its log-probability and the top `k` predictions it was scored against.
    public func scoreWithTopK(_ tokens: [Int32], k: Int) -> [ScoredToken] {
        var out: [ScoredToken] = []
        out.reserveCapacity(max(0, tokens.count - 1))
        let V = model.config.vocabularySize
        _ = score(tokens) { offset, lp in
            // `logProbs` holds the distribution this token was just scored against.
            out.append(ScoredToken(offset: offset, logProb: lp, top: topK(self.logProbs, count: V, k: k)))
        }
        return out
    }
}
