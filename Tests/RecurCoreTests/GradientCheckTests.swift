import XCTest
@testable import RecurCore

/// Central finite differences against the analytic backward pass, for every cell type and for a
/// stacked model end to end (fixed seed, no clipping, no dropout).
final class GradientCheckTests: XCTestCase {
    func makeModel(_ cell: CellKind, _ nl: Nonlinearity = .tanh, layers: Int, embedding: Int, seed: UInt64) -> Model {
        let config = ModelConfig(cell: cell, nonlinearity: nl, vocabularySize: 6, hiddenSize: 5,
                                 layers: layers, embeddingSize: embedding)
        let vocab = Vocabulary(kind: .char, tokens: ["a", "b", "c", "d", "e", "f"], unknownPolicy: .error)
        var model = Model.random(config: config, vocabulary: vocab, seed: seed)
        // Larger weights than the default init, so that gates leave their linear region.
        model.parameters = model.parameters.map { $0 * 2.5 }
        return model
    }

    /// Returns the worst relative error over all parameters.
    func check(_ model: Model, steps T: Int = 4, batch B: Int = 2, file: StaticString = #filePath, line: UInt = #line) {
        let net = Network(config: model.config, steps: T, batch: B)
        var rng = SeededGenerator(seed: 7)
        let inputs = (0..<(T * B)).map { _ in Int32(rng.next() % 6) }
        let targets = (0..<(T * B)).map { _ in Int32(rng.next() % 6) }
        inputs.withUnsafeBufferPointer { i in targets.withUnsafeBufferPointer { t in net.load(inputs: i, targets: t) } }
        // A nonzero incoming state, as in the middle of a corpus.
        let state = StateBatch(config: model.config, batch: B)
        for i in 0..<state.storage.count { state.storage[i] = rng.uniform(-0.5, 0.5) }

        let w = FloatBuffer(model.parameters)
        let g = FloatBuffer(model.parameters.count)
        func loss() -> Double {
            net.setInitialState(state)
            return net.forward(parameters: w.p, training: false, rng: &rng) / Double(T * B)
        }
        _ = loss()
        net.backward(parameters: w.p, grads: g.p)

        var worst = 0.0, worstName = ""
        let eps: Float = model.config.nonlinearity == .relu && model.config.cell == .rnn ? 1e-3 : 1e-2
        for slot in model.layout.slots {
            for i in slot.range {
                let saved = w[i]
                w[i] = saved + eps; let up = loss()
                w[i] = saved - eps; let down = loss()
                w[i] = saved
                let numeric = (up - down) / Double(2 * eps)
                let analytic = Double(g[i])
                let err = abs(numeric - analytic) / max(1e-2, abs(numeric) + abs(analytic))
                if err > worst { worst = err; worstName = "\(slot.name)[\(i - slot.offset)] numeric \(numeric) analytic \(analytic)" }
            }
        }
        XCTAssertLessThan(worst, 2e-2, "worst relative gradient error \(worst) at \(worstName)", file: file, line: line)
    }

    func test_rnnTanh_oneHot_gradientsMatchFiniteDifferences() { check(makeModel(.rnn, layers: 1, embedding: 0, seed: 1)) }
    func test_rnnRelu_embedding_gradientsMatchFiniteDifferences() { check(makeModel(.rnn, .relu, layers: 1, embedding: 3, seed: 2)) }
    func test_lstm_oneHot_gradientsMatchFiniteDifferences() { check(makeModel(.lstm, layers: 1, embedding: 0, seed: 3)) }
    func test_lstm_embedding_gradientsMatchFiniteDifferences() { check(makeModel(.lstm, layers: 1, embedding: 4, seed: 4)) }
    func test_gru_oneHot_gradientsMatchFiniteDifferences() { check(makeModel(.gru, layers: 1, embedding: 0, seed: 5)) }
    func test_gru_embedding_gradientsMatchFiniteDifferences() { check(makeModel(.gru, layers: 1, embedding: 4, seed: 6)) }
    func test_stackedLSTM_endToEnd_gradientsMatchFiniteDifferences() { check(makeModel(.lstm, layers: 3, embedding: 4, seed: 7)) }
    func test_stackedGRU_endToEnd_gradientsMatchFiniteDifferences() { check(makeModel(.gru, layers: 2, embedding: 0, seed: 8)) }
    func test_stackedRNN_endToEnd_gradientsMatchFiniteDifferences() { check(makeModel(.rnn, layers: 2, embedding: 3, seed: 9)) }
}
