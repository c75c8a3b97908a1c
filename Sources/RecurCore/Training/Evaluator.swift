/// Scores a token sequence with a model, one stream from the zero state, the way `recur eval`
/// and the validation split do: the state is carried through the whole sequence.
public final class Evaluator {
    public let model: Model
    let network: Network
    let state: StateBatch
    let weights: FloatBuffer

    /// `chunk` tokens are processed per forward pass (their input projections in one GEMM).
    public init(model: Model, chunk: Int = 1000) {
        self.model = model
        network = Network(config: model.config, steps: chunk, batch: 1)
        state = StateBatch(config: model.config, batch: 1)
        weights = FloatBuffer(model.parameters)
    }

    /// Summed negative log-likelihood (nats) of tokens[1...] given the tokens before each,
    /// and the count of scored tokens. With `perToken`, each token's log-probability too.
    public func score(_ tokens: [Int32], perToken: ((Int, Float) -> Void)? = nil) -> (nats: Double, count: Int) {
        guard tokens.count >= 2 else { return (0, 0) }
        state.resetAll()
        var rng = SeededGenerator(seed: 0)
        var total: Double = 0
        var done = 0
        let n = tokens.count - 1
        let out = UnsafeMutablePointer<Float>.allocate(capacity: network.steps)
        defer { out.deallocate() }
        tokens.withUnsafeBufferPointer { all in
            while done < n {
                let T = min(network.steps, n - done)
                let inputs = UnsafeBufferPointer(rebasing: all[done..<(done + T)])
                let targets = UnsafeBufferPointer(rebasing: all[(done + 1)..<(done + 1 + T)])
                network.tokens.update(from: inputs.baseAddress!, count: T)
                network.targets.update(from: targets.baseAddress!, count: T)
                network.setInitialState(state)
                total += network.forward(parameters: weights.p, training: false, rng: &rng, activeSteps: T)
                network.getFinalState(state)
                if let perToken {
                    network.targetLogProbs(into: out)
                    for i in 0..<T { perToken(done + i + 1, out[i]) }
                }
                done += T
            }
        }
        return (total, n)
    }
}
