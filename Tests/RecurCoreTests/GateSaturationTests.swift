import XCTest
@testable import RecurCore

/// Gate saturation counts the steps below 0.1 and above 0.9, per unit, per sigmoid gate.
final class GateSaturationTests: XCTestCase {
    func test_units_countsStrictlyBelowAndAboveTheThresholds() {
        // 5 steps, stride 3, the gate's 2 units at columns 1 and 2.
        let a: [Float] = [
            9, 0.05, 0.95,
            9, 0.10, 0.90,
            9, 0.99, 0.50,
            9, 0.00, 0.01,
            9, 0.50, 1.00,
        ]
        let units = GateSaturation.units(a, steps: 5, stride: 3, offset: 1, count: 2)
        XCTAssertEqual(units, [UnitSaturation(left: 0.4, right: 0.2), UnitSaturation(left: 0.2, right: 0.4)])
    }

    func test_lstmTrace_reportsInputForgetOutputPerLayer_fromTheirGateBlocks() throws {
        let config = ModelConfig(cell: .lstm, vocabularySize: 4, hiddenSize: 1, layers: 2)
        // Per step, LSTM gates i, f, g, o of the single unit; layer 1 all mid-range.
        let layer0: [Float] = [0.0, 1.0, -1.0, 0.5,
                               0.0, 1.0, 1.0, 0.95]
        let layer1 = [Float](repeating: 0.5, count: 8)
        let trace = ActivationTrace(config: config, steps: 2, h: [[0, 0, 0], [0, 0, 0]], c: [[0, 0, 0], [0, 0, 0]],
                                    gates: [layer0, layer1])
        let s = trace.gateSaturation()
        XCTAssertEqual(s.map(\.gate), ["input", "forget", "output", "input", "forget", "output"])
        XCTAssertEqual(s.map(\.layer), [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(s[0].units, [UnitSaturation(left: 1, right: 0)])
        XCTAssertEqual(s[1].units, [UnitSaturation(left: 0, right: 1)])
        XCTAssertEqual(s[2].units, [UnitSaturation(left: 0, right: 0.5)])
        XCTAssertEqual(s[4].units, [UnitSaturation(left: 0, right: 0)])
    }

    func test_rnnHasNoGates_gruHasResetAndUpdate() {
        for (cell, names) in [(CellKind.rnn, [String]()), (.gru, ["reset", "update"])] {
            let config = ModelConfig(cell: cell, vocabularySize: 4, hiddenSize: 2)
            let model = Model.random(config: config, vocabulary: Vocabulary(kind: .char, tokens: ["a", "b", "c", "d"], unknownPolicy: .error), seed: 1)
            let s = ActivationTrace(model: model, tokens: [0, 1, 2, 3]).gateSaturation()
            XCTAssertEqual(s.map(\.gate), names, "\(cell)")
            for gate in s { XCTAssertEqual(gate.units.count, 2) }
        }
    }
}
