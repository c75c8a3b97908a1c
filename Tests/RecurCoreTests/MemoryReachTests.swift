import XCTest
@testable import RecurCore

/// Memory reach against central finite differences of log p(x_t) with respect to the input at
/// t−d, on tiny models whose tokens are all distinct (so an embedding row is one position's input).
final class MemoryReachTests: XCTestCase {
    private let vocab = Vocabulary(kind: .char, tokens: ["a", "b", "c", "d", "e", "f", "g", "h", "i"], unknownPolicy: .error)
    private let tokens: [Int32] = [3, 0, 7, 5, 1, 8, 2, 6, 4]

    private func makeModel(_ cell: CellKind, layers: Int, embedding: Int, seed: UInt64) -> Model {
        let config = ModelConfig(cell: cell, vocabularySize: 9, hiddenSize: 5, layers: layers, embeddingSize: embedding)
        var model = Model.random(config: config, vocabulary: vocab, seed: seed)
        model.parameters = model.parameters.map { $0 * 2.5 }  // out of the gates' linear region
        return model
    }

    /// log p(tokens[t] | tokens[..<t]) by the training forward pass from the zero state.
    private func logProb(_ model: Model, parameters: [Float], at t: Int) -> Double {
        let net = Network(config: model.config, steps: t, batch: 1)
        let inputs = Array(tokens[0..<t]), targets = Array(tokens[1...t])
        inputs.withUnsafeBufferPointer { i in targets.withUnsafeBufferPointer { net.load(inputs: i, targets: $0) } }
        net.setInitialState(StateBatch(config: model.config, batch: 1))
        var rng = SeededGenerator(seed: 0)
        var out = [Float](repeating: 0, count: t)
        parameters.withUnsafeBufferPointer { _ = net.forward(parameters: $0.baseAddress!, training: false, rng: &rng) }
        out.withUnsafeMutableBufferPointer { net.targetLogProbs(into: $0.baseAddress!) }
        return Double(out[t - 1])
    }

    /// The same network with an identity embedding (E = V) in front: its input rows are the
    /// one-hot vectors, so perturbing the embedding perturbs the one-hot input.
    private func identityEmbedded(_ model: Model) -> Model {
        var config = model.config
        config.embeddingSize = config.vocabularySize
        let V = config.vocabularySize
        let identity = (0..<(V * V)).map { Float($0 / V == $0 % V ? 1 : 0) }
        return Model(config: config, vocabulary: model.vocabulary, parameters: identity + model.parameters)
    }

    private func check(_ model: Model, maxDistance D: Int, file: StaticString = #filePath, line: UInt = #line) {
        let reach = MemoryReach(model: model, tokens: tokens, trace: ActivationTrace(model: model, tokens: tokens),
                                maxDistance: D, maxPositions: 16)
        XCTAssertEqual(reach.positions, Array(D..<tokens.count), file: file, line: line)
        let embedded = model.config.usesEmbedding ? model : identityEmbedded(model)
        let E = embedded.config.embeddingSize, emb = embedded.layout.embedding!.offset
        var worst = 0.0, worstAt = ""
        for (p, t) in reach.positions.enumerated() {
            for d in 1...D {
                let row = emb + Int(tokens[t - d]) * E
                var w = embedded.parameters, sum = 0.0
                let eps: Float = 1e-2
                for e in 0..<E {
                    let saved = w[row + e]
                    w[row + e] = saved + eps; let up = logProb(embedded, parameters: w, at: t)
                    w[row + e] = saved - eps; let down = logProb(embedded, parameters: w, at: t)
                    w[row + e] = saved
                    let g = (up - down) / Double(2 * eps)
                    sum += g * g
                }
                let numeric = sum.squareRoot(), analytic = reach.norms[p][d - 1]
                let err = abs(numeric - analytic) / max(1e-3, numeric + analytic)
                if err > worst { worst = err; worstAt = "t \(t) d \(d): numeric \(numeric) analytic \(analytic)" }
            }
        }
        XCTAssertLessThan(worst, 2e-2, "worst relative error \(worst) at \(worstAt)", file: file, line: line)
        let means = reach.meanNorms
        for d in 0..<D {
            let expected = reach.norms.map { $0[d] }.reduce(0, +) / Double(reach.norms.count)
            XCTAssertEqual(means[d], expected, accuracy: 1e-12, file: file, line: line)
        }
    }

    func test_lstm_embedding_matchesFiniteDifferences() { check(makeModel(.lstm, layers: 2, embedding: 3, seed: 1), maxDistance: 5) }
    func test_gru_oneHot_matchesFiniteDifferences() { check(makeModel(.gru, layers: 1, embedding: 0, seed: 2), maxDistance: 6) }
    func test_rnn_embedding_matchesFiniteDifferences() { check(makeModel(.rnn, layers: 2, embedding: 4, seed: 3), maxDistance: 4) }
    func test_lstm_oneHot_matchesFiniteDifferences() { check(makeModel(.lstm, layers: 1, embedding: 0, seed: 4), maxDistance: 4) }

    func test_shortText_boundsTheDistanceByWhatPrecedesTheLastToken() {
        let model = makeModel(.lstm, layers: 1, embedding: 3, seed: 5)
        let short = Array(tokens.prefix(4))
        let reach = MemoryReach(model: model, tokens: short, trace: ActivationTrace(model: model, tokens: short), maxDistance: 64)
        XCTAssertEqual(reach.maxDistance, 3)
        XCTAssertEqual(reach.positions, [3])
    }
}
