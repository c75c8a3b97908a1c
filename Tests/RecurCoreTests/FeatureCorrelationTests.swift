import XCTest
@testable import RecurCore

/// The feature correlation finds the unit built to track a feature, and the features read text
/// as documented.
final class FeatureCorrelationTests: XCTestCase {
    private let text = "say \"hi (to) me\" now\nand [then\n go]"

    private var pieces: [String] { text.map { String($0) } }

    /// A 2-layer LSTM trace over `steps` tokens whose every unit is noise, except those `plant` sets.
    private func trace(steps T: Int, plant: (inout [[Float]], inout [[Float]]) -> Void) -> ActivationTrace {
        let config = ModelConfig(cell: .lstm, vocabularySize: 50, hiddenSize: 4, layers: 2)
        var rng = SeededGenerator(seed: 11)
        let H = config.hiddenSize
        var h = (0..<2).map { _ in (0..<((T + 1) * H)).map { _ in rng.uniform(-1, 1) } }
        var c = (0..<2).map { _ in (0..<((T + 1) * H)).map { _ in rng.uniform(-1, 1) } }
        plant(&h, &c)
        let gates = (0..<2).map { _ in [Float](repeating: 0.5, count: T * 4 * H) }
        return ActivationTrace(config: config, steps: T, h: h, c: c, gates: gates)
    }

    func test_textFeatures_followTheirDefinitions() {
        let quotes = TextFeature.insideQuotes.values(pieces)
        let brackets = TextFeature.insideBrackets.values(pieces)
        let column = TextFeature.linePosition.values(pieces)
        let word = TextFeature.wordStart.values(pieces)
        let chars = Array(text)
        func marked(_ values: [Float]) -> String { String(zip(chars, values).filter { $0.1 != 0 }.map(\.0)) }
        XCTAssertEqual(marked(quotes), "\"hi (to) me")
        XCTAssertEqual(marked(brackets), "(to[then\n go")
        XCTAssertEqual(marked(word), "shtmnatg")
        XCTAssertEqual(column[0], 0)
        XCTAssertEqual(column[4], 4)
        let secondLine = chars.firstIndex(of: "\n")! + 1
        XCTAssertEqual(column[secondLine - 1], 0, "the newline")
        XCTAssertEqual(column[secondLine], 0, "the first character of a line")
        XCTAssertEqual(column[secondLine + 3], 3)
    }

    func test_strongestUnit_picksThePlantedCellStateUnit() throws {
        let feature = TextFeature.insideQuotes.values(pieces), T = feature.count, H = 4
        let found = try XCTUnwrap(trace(steps: T) { _, c in
            for t in 0..<T { c[1][(t + 1) * H + 2] = 0.7 * feature[t] + 0.05 * c[1][(t + 1) * H + 2] }
        }.strongestUnit(for: feature))
        XCTAssertEqual(found.unit, HiddenUnit(layer: 1, vector: .c, index: 2))
        XCTAssertGreaterThan(found.correlation, 0.95)
        XCTAssertEqual(found.values.count, T)
    }

    func test_strongestUnit_ranksByMagnitude_soAnAntiCorrelatedUnitWins() throws {
        let feature = TextFeature.linePosition.values(pieces), T = feature.count, H = 4
        let found = try XCTUnwrap(trace(steps: T) { h, c in
            for t in 0..<T {
                h[0][(t + 1) * H + 3] = -feature[t]                                  // r = -1
                c[0][(t + 1) * H + 1] = feature[t] + 3 * c[0][(t + 1) * H + 1]       // weaker, positive
            }
        }.strongestUnit(for: feature))
        XCTAssertEqual(found.unit, HiddenUnit(layer: 0, vector: .h, index: 3))
        XCTAssertEqual(found.correlation, -1, accuracy: 1e-9)
    }

    func test_strongestUnit_isNilForAFeatureConstantOverTheText() {
        let feature = [Float](repeating: 0, count: 10)
        XCTAssertNil(trace(steps: 10) { _, _ in }.strongestUnit(for: feature))
    }

    func test_pearson_matchesHandComputedValues() throws {
        XCTAssertEqual(try XCTUnwrap(pearson([1, 2, 3], [2, 4, 6])), 1, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(pearson([1, 2, 3, 4], [1, 3, 2, 4])), 0.8, accuracy: 1e-12)
        XCTAssertNil(pearson([1, 1, 1], [1, 2, 3]))
    }

    func test_trace_fromModel_matchesEvaluatorStates() {
        // The trace's last h equals the state the inference path reaches on the same tokens.
        let config = ModelConfig(cell: .gru, vocabularySize: 6, hiddenSize: 5, layers: 2, embeddingSize: 3)
        let vocab = Vocabulary(kind: .char, tokens: ["a", "b", "c", "d", "e", "f"], unknownPolicy: .error)
        let model = Model.random(config: config, vocabulary: vocab, seed: 3)
        let tokens: [Int32] = [0, 3, 2, 5, 1, 1, 4]
        let trace = ActivationTrace(model: model, tokens: tokens)
        let stepper = Stepper(model: model), state = StateBatch(config: config, batch: 1)
        for t in tokens { _ = [t].withUnsafeBufferPointer { stepper.step(tokens: $0, state: state) } }
        var worst: Float = 0
        for k in 0..<2 {
            for j in 0..<5 {
                worst = max(worst, abs(trace.values(of: HiddenUnit(layer: k, vector: .h, index: j)).last! - state.h(layer: k)[j]))
            }
        }
        XCTAssertLessThan(worst, 1e-5, "max difference \(worst)")
    }
}
