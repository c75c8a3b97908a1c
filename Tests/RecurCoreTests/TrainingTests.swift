import XCTest
@testable import RecurCore

final class TrainingTests: XCTestCase {
    /// A corpus with learnable structure: "abcab" patterns plus a little noise.
    func corpus(_ n: Int, seed: UInt64 = 1) -> [Int32] {
        var rng = SeededGenerator(seed: seed)
        let pattern: [Int32] = [0, 1, 2, 3, 1, 2, 4, 0, 3]
        return (0..<n).map { i in rng.next() % 10 == 0 ? Int32(rng.next() % 6) : pattern[i % pattern.count] }
    }

    func model(_ cell: CellKind = .lstm, seed: UInt64 = 3) -> Model {
        let config = ModelConfig(cell: cell, vocabularySize: 6, hiddenSize: 16, layers: 2, embeddingSize: 8)
        let vocab = Vocabulary(kind: .char, tokens: ["a", "b", "c", "d", "e", "f"], unknownPolicy: .error)
        return Model.random(config: config, vocabulary: vocab, seed: seed)
    }

    func options() -> TrainingOptions {
        var o = TrainingOptions()
        o.sequenceLength = 10
        o.batchSize = 4
        o.learningRate = 1e-2
        o.epochs = 3
        o.dropout = 0.1
        o.reportInterval = 1e9
        o.evaluationInterval = 1e9
        return o
    }

    func test_training_reducesValidationLoss_forEveryCell() throws {
        for cell in CellKind.allCases {
            let data = corpus(4000)
            let trainer = try Trainer(model: model(cell), corpus: data, options: options())
            let before = try XCTUnwrap(trainer.validate())
            var reports: [TrainingReport] = []
            trainer.run(clock: { 0 }, shouldStop: { false }) { reports.append($0) }
            let after = try XCTUnwrap(reports.last?.validationLoss)
            XCTAssertLessThan(after, before * 0.7, "\(cell): validation loss \(before) -> \(after)")
            XCTAssertEqual(trainer.progress.epoch, 2, "3 epochs: two wrap-arounds")
        }
    }

    func test_training_isReproducibleFromSeed() throws {
        func train() throws -> [Float] {
            let trainer = try Trainer(model: model(), corpus: corpus(2000), options: options())
            for _ in 0..<20 { _ = trainer.step(elapsed: 0) }
            return trainer.currentModel().parameters
        }
        XCTAssertEqual(try train(), try train())
    }

    func test_validationSplit_isTheLastFractionOfTheCorpus() throws {
        let data = corpus(1000)
        var o = options()
        o.validationFraction = 0.25
        let trainer = try Trainer(model: model(), corpus: data, options: o)
        XCTAssertEqual(Array(trainer.validationTokens), Array(data[750...]))
        XCTAssertEqual(Array(trainer.trainTokens), Array(data[..<750]))
    }

    func test_trainer_refusesCorpusTooShortForTheLayout() {
        var o = options()
        o.batchSize = 64
        XCTAssertThrowsError(try Trainer(model: model(), corpus: corpus(300), options: o)) { error in
            XCTAssertTrue("\(error)".contains("too few"), "\(error)")
        }
    }

    func test_trainer_refusesTokenOutsideVocabulary() {
        var data = corpus(1000)
        data[10] = 6
        XCTAssertThrowsError(try Trainer(model: model(), corpus: data, options: options()))
    }

    func test_options_rejectNonsenseWithActionableMessages() {
        var o = TrainingOptions()
        o.dropout = 1
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("--dropout")) }
        o = TrainingOptions(); o.learningRate = 0
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("--lr")) }
        o = TrainingOptions(); o.schedule = .cosine
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("horizon")) }
    }

    func test_adam_firstStep_movesEachWeightByLearningRate() {
        // With bias correction, Adam's first step is lr · g/|g| (up to epsilon).
        let opt = Optimizer(kind: .adam, parameterCount: 3)
        var w: [Float] = [1, 2, 3]
        let g: [Float] = [0.5, -2, 1e-3]
        w.withUnsafeMutableBufferPointer { wp in g.withUnsafeBufferPointer { gp in
            opt.update(wp.baseAddress!, gp.baseAddress!, count: 3, lr: 0.1)
        } }
        XCTAssertEqual(w[0], 0.9, accuracy: 1e-5)
        XCTAssertEqual(w[1], 2.1, accuracy: 1e-5)
        XCTAssertEqual(w[2], 2.9, accuracy: 1e-4)
    }

    func test_adagrad_accumulatesSquaredGradients() {
        let opt = Optimizer(kind: .adagrad, parameterCount: 1)
        var w: [Float] = [0]
        for g: Float in [3, 4] {
            w.withUnsafeMutableBufferPointer { wp in [g].withUnsafeBufferPointer { gp in
                opt.update(wp.baseAddress!, gp.baseAddress!, count: 1, lr: 1)
            } }
        }
        // -3/3 - 4/5
        XCTAssertEqual(w[0], -1.8, accuracy: 1e-6)
    }

    func test_clipGradientNorm_scalesToTheLimit() {
        var g: [Float] = [3, 4]
        let norm = g.withUnsafeMutableBufferPointer { clipGradientNorm($0.baseAddress!, count: 2, maxNorm: 1) }
        XCTAssertEqual(norm, 5, accuracy: 1e-6)
        XCTAssertEqual((g[0] * g[0] + g[1] * g[1]).squareRoot(), 1, accuracy: 1e-5)
        var small: [Float] = [0.3, 0.4]
        _ = small.withUnsafeMutableBufferPointer { clipGradientNorm($0.baseAddress!, count: 2, maxNorm: 1) }
        XCTAssertEqual(small, [0.3, 0.4])
    }

    func test_cosineSchedule_decaysToFloorAtHorizon() throws {
        var o = options()
        o.schedule = .cosine
        o.timeLimit = 100
        o.epochs = nil
        let trainer = try Trainer(model: model(), corpus: corpus(2000), options: o)
        XCTAssertEqual(trainer.learningRate(elapsed: 0), 1e-2, accuracy: 1e-7)
        XCTAssertEqual(trainer.learningRate(elapsed: 50), 1e-2 * 0.525, accuracy: 1e-6)
        XCTAssertEqual(trainer.learningRate(elapsed: 100), 1e-2 * 0.05, accuracy: 1e-7)
    }

    func test_sampler_isDeterministicForASeed_andGreedyIsArgmax() {
        let m = model()
        func draw(_ seed: UInt64, _ temperature: Float) -> [Int32] {
            var out: [Int32] = []
            Sampler(model: m, seed: seed).generate(prime: [0, 1], length: 30, temperature: temperature, topK: 3) { out.append($0) }
            return out
        }
        XCTAssertEqual(draw(5, 1), draw(5, 1))
        XCTAssertEqual(draw(5, 0), draw(6, 0), "greedy decoding ignores the seed")
        XCTAssertEqual(draw(5, 1).count, 30)
    }

    func test_topK_returnsMostProbableFirst() {
        let lp: [Float] = [-3, -0.5, -2, -0.5, -9].map { $0 }
        let top = lp.withUnsafeBufferPointer { topK($0.baseAddress!, count: 5, k: 3) }
        XCTAssertEqual(top.map(\.token), [1, 3, 2])
        XCTAssertEqual(top[0].probability, expf(-0.5), accuracy: 1e-6)
    }
}
