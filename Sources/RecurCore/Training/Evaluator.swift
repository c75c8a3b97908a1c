/// Scores a token sequence with a model as one stream from the zero state, token by token
/// through the same `Stepper` the daemon uses, so `recur eval --per-token` and a stream fed the
/// same text report the same numbers.
public final class Evaluator {
    public let model: Model
    let stepper: Stepper
    let state: StateBatch
    let logProbs: UnsafeMutablePointer<Float>

    /// `precision`: the weights' format for the products (`Precision`; fp32 by default).
    public init(model: Model, precision: Precision = .fp32) {
        self.model = model
        stepper = Stepper(model: model, maxBatch: 1, precision: precision)
        state = StateBatch(config: model.config, batch: 1)
        logProbs = .allocate(capacity: model.config.vocabularySize)
    }

    deinit { logProbs.deallocate() }

    /// Summed negative log-likelihood (nats) of tokens[1...] given the tokens before each, and
    /// the count of scored tokens. `perToken` receives (offset, log p) for each scored token,
    /// offset counting tokens from 1 (the first token has no prediction and is not scored).
    public func score(_ tokens: [Int32], perToken: ((Int, Float) -> Void)? = nil) -> (nats: Double, count: Int) {
        guard tokens.count >= 2 else { return (0, 0) }
        state.resetAll()
        let V = model.config.vocabularySize
        var total: Double = 0
        tokens.withUnsafeBufferPointer { all in
            for i in 0..<(all.count - 1) {
                let logits = stepper.step(tokens: UnsafeBufferPointer(rebasing: all[i..<(i + 1)]), state: state)
                logSoftmax(logits, count: V, into: logProbs)
                let lp = logProbs[Int(all[i + 1])]
                total -= Double(lp)
                perToken?(i + 2, lp)
            }
        }
        return (total, tokens.count - 1)
    }
}
