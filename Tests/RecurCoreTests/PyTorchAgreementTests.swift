import Foundation
import XCTest
@testable import RecurCore

/// Agreement with PyTorch on the same weights. The fixtures (Tests/RecurCoreTests/Fixtures) were
/// generated once by scripts/make_fixtures.py, in float64 from float32 weights, so these tests
/// need no PyTorch. Differences are measured relative to the largest magnitude of each tensor.
final class PyTorchAgreementTests: XCTestCase {
    struct Expected: Decodable {
        struct InitialState: Decodable {
            var h0: [[Double]]
            var c0: [[Double]]?
            var logits_from_h0: [[Double]]
            var final_h_from_h0: [[Double]]
            var final_c_from_h0: [[Double]]?
        }
        var tokens: [Int32]
        var targets: [Int32]
        var logits: [[Double]]
        var log_probs: [[Double]]
        var top_hidden: [[Double]]
        var final_h: [[Double]]
        var final_c: [[Double]]?
        var loss: Double
        var grads: [String: [Double]]
        var initial_state_case: InitialState
    }

    static let cases = ["rnn_tanh_onehot_l1", "rnn_relu_emb_l2", "lstm_onehot_l1", "lstm_emb_l2",
                        "gru_onehot_l1", "gru_emb_l2", "lstm_emb_l3_h16"]

    static func fixture(_ name: String) throws -> (Model, Expected) {
        let dir = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let model = try Model(contentsOf: dir.appendingPathComponent("\(name).safetensors").path)
        let data = try Data(contentsOf: dir.appendingPathComponent("\(name).expected.json"))
        return (model, try JSONDecoder().decode(Expected.self, from: data))
    }

    /// max |actual - expected| / max |expected|.
    static func relativeError(_ actual: [Float], _ expected: [Double]) -> Double {
        precondition(actual.count == expected.count, "sizes differ: \(actual.count) vs \(expected.count)")
        let scale = max(expected.map(abs).max() ?? 0, 1e-30)
        return zip(actual, expected).map { abs(Double($0) - $1) }.max()! / scale
    }

    func assertClose(_ actual: [Float], _ expected: [Double], tolerance: Double, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        let err = Self.relativeError(actual, expected)
        XCTAssertLessThanOrEqual(err, tolerance, "\(what): max relative difference \(err)", file: file, line: line)
    }

    func run(_ name: String) throws {
        let (model, e) = try Self.fixture(name)
        let T = e.tokens.count, H = model.config.hiddenSize, V = model.config.vocabularySize
        let net = Network(config: model.config, steps: T, batch: 1)
        e.tokens.withUnsafeBufferPointer { i in e.targets.withUnsafeBufferPointer { t in net.load(inputs: i, targets: t) } }
        let w = FloatBuffer(model.parameters)
        let state = StateBatch(config: model.config, batch: 1)
        var rng = SeededGenerator(seed: 0)

        // From the zero state: logits, hidden states, final state, loss and every gradient.
        net.setInitialState(state)
        let loss = net.forward(parameters: w.p, training: false, rng: &rng) / Double(T)
        XCTAssertEqual(loss, e.loss, accuracy: 1e-5 * e.loss, "\(name): loss")
        assertClose(Array(UnsafeBufferPointer(start: net.logits.p, count: T * V)), e.logits.flatMap { $0 }, tolerance: 1e-5, "\(name) logits")
        assertClose(Array(UnsafeBufferPointer(start: net.topHidden, count: T * H)), e.top_hidden.flatMap { $0 }, tolerance: 1e-5, "\(name) top hidden")
        let logProbs = UnsafeMutablePointer<Float>.allocate(capacity: T)
        defer { logProbs.deallocate() }
        net.targetLogProbs(into: logProbs)
        for t in 0..<T {
            XCTAssertEqual(Double(logProbs[t]), e.log_probs[t][Int(e.targets[t])], accuracy: 1e-5, "\(name): log p at \(t)")
        }
        net.getFinalState(state)
        for k in 0..<model.config.layers {
            assertClose(Array(UnsafeBufferPointer(start: state.h(layer: k), count: H)), e.final_h[k], tolerance: 1e-5, "\(name) final h[\(k)]")
            if let c = e.final_c {
                assertClose(Array(UnsafeBufferPointer(start: state.c(layer: k), count: H)), c[k], tolerance: 1e-5, "\(name) final c[\(k)]")
            }
        }
        let g = FloatBuffer(model.parameters.count)
        net.backward(parameters: w.p, grads: g.p)
        for slot in model.layout.slots {
            let expected = try XCTUnwrap(e.grads[slot.name], "\(name): no expected gradient for \(slot.name)")
            assertClose(Array(UnsafeBufferPointer(start: g.p + slot.offset, count: slot.count)), expected, tolerance: 1e-5, "\(name) d \(slot.name)")
        }

        // From a nonzero initial state.
        let s = e.initial_state_case
        for k in 0..<model.config.layers {
            for j in 0..<H {
                state.h(layer: k)[j] = Float(s.h0[k][j])
                if let c0 = s.c0 { state.c(layer: k)[j] = Float(c0[k][j]) }
            }
        }
        net.setInitialState(state)
        net.forward(parameters: w.p, training: false, rng: &rng)
        assertClose(Array(UnsafeBufferPointer(start: net.logits.p, count: T * V)), s.logits_from_h0.flatMap { $0 }, tolerance: 1e-5, "\(name) logits from h0")
        net.getFinalState(state)
        for k in 0..<model.config.layers {
            assertClose(Array(UnsafeBufferPointer(start: state.h(layer: k), count: H)), s.final_h_from_h0[k], tolerance: 1e-5, "\(name) final h from h0 [\(k)]")
            if let c = s.final_c_from_h0 {
                assertClose(Array(UnsafeBufferPointer(start: state.c(layer: k), count: H)), c[k], tolerance: 1e-5, "\(name) final c from h0 [\(k)]")
            }
        }
    }

    func test_rnnTanh_oneHot_matchesPyTorch() throws { try run("rnn_tanh_onehot_l1") }
    func test_rnnRelu_embedding_twoLayers_matchesPyTorch() throws { try run("rnn_relu_emb_l2") }
    func test_lstm_oneHot_matchesPyTorch() throws { try run("lstm_onehot_l1") }
    func test_lstm_embedding_twoLayers_matchesPyTorch() throws { try run("lstm_emb_l2") }
    func test_gru_oneHot_matchesPyTorch() throws { try run("gru_onehot_l1") }
    func test_gru_embedding_twoLayers_matchesPyTorch() throws { try run("gru_emb_l2") }
    func test_lstm_threeLayers_h16_matchesPyTorch() throws { try run("lstm_emb_l3_h16") }
}

/// The inference path (Stepper, used by eval and the daemon) against the same fixtures.
final class StepperAgreementTests: XCTestCase {
    func run(_ name: String) throws {
        let (model, e) = try PyTorchAgreementTests.fixture(name)
        let V = model.config.vocabularySize
        for batch in [1, 3, 6] {
            // Every row of the batch carries the same stream: each must match PyTorch, and all
            // rows must agree bit for bit (the step does not depend on the batch).
            let stepper = Stepper(model: model, maxBatch: batch)
            let state = StateBatch(config: model.config, batch: batch)
            var logits: [Float] = []
            for token in e.tokens {
                let tokens = [Int32](repeating: token, count: batch)
                let out = tokens.withUnsafeBufferPointer { stepper.step(tokens: $0, state: state) }
                for b in 1..<batch {
                    for j in 0..<V { XCTAssertEqual(out[b * V + j], out[j], "\(name): row \(b) differs from row 0 at batch \(batch)") }
                }
                logits += Array(UnsafeBufferPointer(start: out, count: V))
            }
            let err = PyTorchAgreementTests.relativeError(logits, e.logits.flatMap { $0 })
            XCTAssertLessThanOrEqual(err, 1e-5, "\(name) stepper logits (batch \(batch)): max relative difference \(err)")
        }
    }

    func test_everyFixture_stepperMatchesPyTorch() throws {
        for name in PyTorchAgreementTests.cases { try run(name) }
    }

    func test_evaluator_scoresEqualFixtureLogProbs() throws {
        let (model, e) = try PyTorchAgreementTests.fixture("lstm_emb_l3_h16")
        let tokens = e.tokens + [e.targets.last!]
        var seen: [(Int, Float)] = []
        let (nats, count) = Evaluator(model: model).score(tokens) { seen.append(($0, $1)) }
        XCTAssertEqual(count, tokens.count - 1)
        XCTAssertEqual(nats / Double(count), e.loss, accuracy: 1e-5 * e.loss)
        XCTAssertEqual(seen.first?.0, 2, "offsets count tokens from 1; the first scored token is the second")
        for (i, (_, lp)) in seen.enumerated() {
            XCTAssertEqual(Double(lp), e.log_probs[i][Int(e.targets[i])], accuracy: 1e-5)
        }
    }
}

/// The threaded inference path must give exactly the single-threaded result, for every cell.
final class StepperThreadingTests: XCTestCase {
    func test_parallelStep_equalsSingleThreadedStep_bitForBit() throws {
        for cell in CellKind.allCases {
            let config = ModelConfig(cell: cell, vocabularySize: 50, hiddenSize: 160, layers: 2, embeddingSize: 24)
            let vocab = Vocabulary(kind: .char, tokens: (0..<50).map { String(UnicodeScalar(UInt8(40 + $0))) }, unknownPolicy: .error)
            let model = Model.random(config: config, vocabulary: vocab, seed: 11)
            let pool = InferencePool(threads: 2)
            for batch in [1, 5, 40] {  // one stream, column split, row split
                let a = Stepper(model: model, maxBatch: batch), b = Stepper(model: model, maxBatch: batch)
                let sa = StateBatch(config: config, batch: batch), sb = StateBatch(config: config, batch: batch)
                var rng = SeededGenerator(seed: 3)
                for _ in 0..<20 {
                    let tokens = (0..<batch).map { _ in Int32(rng.next() % 50) }
                    let la = tokens.withUnsafeBufferPointer { t in pool.withPool { a.step(tokens: t, state: sa, pool: $0) } }
                    let lb = tokens.withUnsafeBufferPointer { b.step(tokens: $0, state: sb, pool: nil) }
                    for i in 0..<(batch * 50) { XCTAssertEqual(la[i], lb[i], "\(cell) batch \(batch): logit \(i)") }
                    for i in 0..<sa.storage.count { XCTAssertEqual(sa.storage[i], sb.storage[i], "\(cell) batch \(batch): state \(i)") }
                }
            }
        }
    }
}
