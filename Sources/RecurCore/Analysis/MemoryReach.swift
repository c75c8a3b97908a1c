/// How far back a model's predictions reach: for each distance d in 1...D, the norm of the
/// gradient of log p(x_t | x_<t) with respect to the input at t−d (the embedding row, or the
/// one-hot vector), averaged over positions t. Computed with the training backward pass
/// (`Network.backward(lastStepOnly:)`) on windows of the last D inputs before each t, each started
/// from the text's real state before the window: earlier inputs only enter through that state,
/// which does not depend on the window's inputs, so every gradient up to distance D is exact.
///
/// Shape legend: P positions (the batch), D distances (the window's steps), E input width.
public struct MemoryReach: Sendable {
    /// The predicted token index t of each position (P), each ≥ D.
    public let positions: [Int]
    /// (P, D): `norms[p][d - 1]` is |∂ log p(x_t) / ∂ input_{t−d}| for position p.
    public let norms: [[Double]]

    /// D.
    public var maxDistance: Int { norms.first?.count ?? 0 }

    /// The mean over positions for each distance 1...D (index d − 1).
    public var meanNorms: [Double] {
        guard let first = norms.first else { return [] }
        return (0..<first.count).map { d in norms.reduce(0) { $0 + $1[d] } / Double(norms.count) }
    }

    /// Measures `model` on `tokens` (at least 2), whose activations `trace` holds, at up to
    /// `maxPositions` positions spread evenly over the text, for distances up to `maxDistance`
    /// (fewer on a text shorter than maxDistance + 1 tokens).
    public init(model: Model, tokens: [Int32], trace: ActivationTrace, maxDistance: Int = 64, maxPositions: Int = 64) {
        precondition(tokens.count >= 2, "memory reach needs at least 2 tokens, got \(tokens.count)")
        precondition(trace.steps == tokens.count, "the trace covers \(trace.steps) tokens, not \(tokens.count)")
        precondition(maxDistance >= 1 && maxPositions >= 1, "maxDistance \(maxDistance) and maxPositions \(maxPositions) must be positive")
        let D = min(maxDistance, tokens.count - 1)
        // Targets t in D...T−1: each has D inputs before it.
        let candidates = tokens.count - D
        let P = min(maxPositions, candidates)
        positions = (0..<P).map { p in D + (P == 1 ? candidates - 1 : p * (candidates - 1) / (P - 1)) }
        let B = P, N = D * B, config = model.config

        let net = Network(config: config, steps: D, batch: B)
        var inputs = [Int32](repeating: 0, count: N), targets = inputs
        let state = StateBatch(config: config, batch: B)
        for (b, t) in positions.enumerated() {
            for s in 0..<D {  // row s·B + b reads token t − D + s and predicts the next one
                inputs[s * B + b] = tokens[t - D + s]
                targets[s * B + b] = tokens[t - D + s + 1]
            }
            trace.writeState(after: t - D, into: state, stream: b)
        }
        inputs.withUnsafeBufferPointer { i in targets.withUnsafeBufferPointer { net.load(inputs: i, targets: $0) } }
        net.setInitialState(state)
        let grads = FloatBuffer(model.parameters.count)
        var rng = SeededGenerator(seed: 0)
        model.parameters.withUnsafeBufferPointer { w in
            _ = net.forward(parameters: w.baseAddress!, training: false, rng: &rng)
            net.backward(parameters: w.baseAddress!, grads: grads.p, lastStepOnly: true)
        }

        // ∂(mean over B of −log p) / ∂ input rows, (N, I): embedding rows straight from the
        // backward pass; one-hot vectors as layer 0's gate gradient (N, G·H) · W_ih0 (G·H, V).
        let I = config.inputSize(layer: 0)
        let inputGrad: UnsafePointer<Float>
        let oneHotGrad = FloatBuffer(config.usesEmbedding ? 0 : N * I)
        if config.usesEmbedding {
            inputGrad = UnsafePointer(net.dInput.p)
        } else {
            let GH = config.cell.gateCount * config.hiddenSize
            model.parameters.withUnsafeBufferPointer { w in
                sgemm(m: N, n: I, k: GH, a: net.dGatesIH.p, lda: GH,
                      b: w.baseAddress! + net.layout.layers[0].weightIH.offset, ldb: I, c: oneHotGrad.p, ldc: I)
            }
            inputGrad = UnsafePointer(oneHotGrad.p)
        }
        norms = (0..<B).map { b in
            (1...D).map { d in
                let row = inputGrad + ((D - d) * B + b) * I
                var sum = 0.0
                for i in 0..<I { sum += Double(row[i]) * Double(row[i]) }
                return sum.squareRoot() * Double(B)  // undo the 1/B of the mean
            }
        }
    }
}
