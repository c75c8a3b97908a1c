import RecurCore
import RecurTestSupport
import XCTest
@testable import RecurEngine

/// Predict continues a copy of the stream: greedy equals the argmax continuation, sampling is
/// reproducible from its seed, and the stream itself never changes.
final class PredictTests: XCTestCase {
    let model = Fixtures.model(cell: .lstm, layers: 2, hidden: 32)

    func test_greedyPredict_equalsArgmaxContinuation() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let text = "abc de漢 fgh"
        _ = try await engine.feed(stream: "p", text: Array(text.utf8), topK: nil, client: 1)
        let predicted = try await engine.predict(stream: "p", count: 30, temperature: 0, topK: nil, seed: nil, client: 1)
        let tokens = try model.vocabulary.encode(text)
        XCTAssertEqual(predicted.map(\.token), Fixtures.offlineGreedy(model, after: tokens, count: 30))
        // Each probability is the model's for that token in that context.
        let logprobs = Fixtures.offlineLogprobs(model, tokens + predicted.map(\.token))
        for (i, p) in predicted.enumerated() {
            XCTAssertEqual(p.probability, expf(logprobs[tokens.count + i]!), "token \(i)")
        }
    }

    func test_predict_doesNotChangeTheStream() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let first = try await engine.feed(stream: "p", text: Array("abcd".utf8), topK: nil, client: 1)
        let before = try await engine.info(stream: "p")
        _ = try await engine.predict(stream: "p", count: 50, temperature: 0, topK: nil, seed: nil, client: 1)
        _ = try await engine.predict(stream: "p", count: 50, temperature: 1.5, topK: 4, seed: 3, client: 1)
        let after = try await engine.info(stream: "p")
        XCTAssertEqual(after.offset, before.offset)
        XCTAssertEqual(after.meanLoss, before.meanLoss)
        let rest = try await engine.feed(stream: "p", text: Array("efgh".utf8), topK: nil, client: 1)
        Fixtures.assertMatchesOffline(first + rest, model: model, tokens: try model.vocabulary.encode("abcdefgh"), stream: "p")
    }

    func test_sampledPredict_isReproducibleFromSeed_andTopOneIsGreedy() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "p", text: Array("hello".utf8), topK: nil, client: 1)
        let a = try await engine.predict(stream: "p", count: 40, temperature: 1, topK: nil, seed: 99, client: 1)
        let b = try await engine.predict(stream: "p", count: 40, temperature: 1, topK: nil, seed: 99, client: 1)
        let c = try await engine.predict(stream: "p", count: 40, temperature: 1, topK: nil, seed: 100, client: 1)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a.map(\.token), c.map(\.token))
        XCTAssertTrue(a.allSatisfy { $0.token >= 0 && Int($0.token) < model.config.vocabularySize && $0.probability > 0 })
        let top1 = try await engine.predict(stream: "p", count: 20, temperature: 0.7, topK: 1, seed: 1, client: 1)
        let greedy = try await engine.predict(stream: "p", count: 20, temperature: 0, topK: nil, seed: nil, client: 1)
        XCTAssertEqual(top1, greedy)
    }

    func test_predict_onStreamWithNoTokens_isBadValue_andCountZeroIsEmpty() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "held", text: [0xE6], topK: nil, client: 1)  // a held byte, no token
        await assertThrows(.badValue("stream 'held' has absorbed no tokens yet, so there is nothing to continue")) {
            try await engine.predict(stream: "held", count: 3, temperature: 0, topK: nil, seed: nil, client: 1)
        }
        _ = try await engine.feed(stream: "one", text: Array("a".utf8), topK: nil, client: 1)
        let none = try await engine.predict(stream: "one", count: 0, temperature: 0, topK: nil, seed: nil, client: 1)
        XCTAssertEqual(none, [])
        let single = try await engine.predict(stream: "one", count: 1, temperature: 0, topK: nil, seed: nil, client: 1)
        XCTAssertEqual(single.map(\.token), Fixtures.offlineGreedy(model, after: try model.vocabulary.encode("a"), count: 1))
    }

    func test_predict_whileOtherStreamsFeed_stillEqualsArgmaxContinuation() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "p", text: Array("abc".utf8), topK: nil, client: 1)
        async let predicted = engine.predict(stream: "p", count: 200, temperature: 0, topK: nil, seed: nil, client: 1)
        var rng = TestRNG(state: 4)
        let text = Fixtures.randomText(&rng, characters: 300)
        async let fed = engine.feed(stream: "other", text: Array(text.utf8), topK: nil, client: 2)
        let (p, f) = try await (predicted, fed)
        XCTAssertEqual(p.map(\.token), Fixtures.offlineGreedy(model, after: try model.vocabulary.encode("abc"), count: 200))
        Fixtures.assertMatchesOffline(f, model: model, tokens: try model.vocabulary.encode(text), stream: "other")
    }
}
