import Foundation
import RecurCore
import XCTest

/// The checkpoint format on its own, without the binary.
final class TrainingCheckpointTests: XCTestCase {
    private func sample(_ kind: OptimizerKind) -> TrainingCheckpoint {
        var options = TrainingOptions()
        options.optimizer = kind
        options.learningRate = 3.7e-3
        options.validationFraction = 0.15
        options.timeLimit = 12.25
        options.epochs = nil
        options.schedule = .cosine
        options.seed = 123_456_789_012
        var progress = TrainingProgress()
        progress.tokens = 64_000
        progress.chunk = 400
        progress.epoch = 2
        progress.position = 1_380
        progress.elapsed = 7.123456789
        progress.bestValidationLoss = 1.2345678901234
        let m: [Float] = [0.1, -2.5e-7, 3, .leastNonzeroMagnitude]
        return TrainingCheckpoint(optimizerKind: kind, step: 400, m: m, v: kind == .adam ? [1, 2, 3, 4] : [],
                                  weights: kind == .adam ? [5, 6, 7, 8] : nil, progress: progress,
                                  options: options, corpusBytes: 99)
    }

    func test_checkpoint_roundTripsExactly() throws {
        for kind in OptimizerKind.allCases {
            let original = sample(kind)
            let parsed = try TrainingCheckpoint(safetensors: original.serialize())
            XCTAssertEqual(parsed.optimizerKind, kind)
            XCTAssertEqual(parsed.step, original.step)
            XCTAssertEqual(parsed.m, original.m)
            XCTAssertEqual(parsed.v, original.v)
            XCTAssertEqual(parsed.weights, original.weights)
            XCTAssertEqual(parsed.progress, original.progress)
            XCTAssertEqual(parsed.options, original.options)
            XCTAssertEqual(parsed.corpusBytes, 99)
            let optimizer = try parsed.makeOptimizer(parameterCount: 4)
            XCTAssertEqual(optimizer.step, 400)
            XCTAssertEqual(optimizer.m.array, original.m)
        }
    }

    func test_checkpoint_refusesOtherFilesAndSizes() throws {
        XCTAssertThrowsError(try TrainingCheckpoint(safetensors: Array("garbage!garbage!".utf8)))
        let model = SafeTensorsFile.serialize([.init(name: "m", shape: [1], values: [0][...])],
                                              metadata: ["format": "recur-lm"])
        XCTAssertThrowsError(try TrainingCheckpoint(safetensors: model)) { error in
            XCTAssertTrue("\(error)".contains("not a recur training checkpoint"), "\(error)")
        }
        XCTAssertThrowsError(try sample(.adam).makeOptimizer(parameterCount: 5))
    }
}
