import RecurCore
import RecurTestSupport
import XCTest
@testable import RecurEngine

/// docs/ENGINE.md, "Inline turns": a request that is the engine's only work is stepped on the
/// caller's thread, up to `inlineTurns` turns, and the rest by the engine thread; the events are
/// the same either way.
final class InlineTurnTests: XCTestCase {
    private func engine(_ model: Model, inlineTurns: Int) -> StreamEngine {
        var options = EngineOptions()
        options.inlineTurns = inlineTurns
        // No sweep turns of the engine thread in between (a request that arrives while the
        // engine thread turns is handed to it, as it should be, but not what is counted here).
        options.sweepInterval = 3600
        return StreamEngine.started(model: model, options: options)
    }

    func test_aLoneOneTokenFeed_isSteppedByTheCaller_andNotWithInlineTurnsOff() async throws {
        let model = Fixtures.model(cell: .lstm)
        let inline = engine(model, inlineTurns: 5)
        defer { inline.shutdown() }
        for (i, character) in "be fed".utf8.enumerated() {
            _ = try await inline.feed(stream: "s", text: [character], topK: 3, client: 1)
            let stats = await inline.stats()
            XCTAssertEqual(stats.stepsInline, i + 1, "one-token feed \(i) of a lone client: \(stats)")
            XCTAssertEqual(stats.steps, i + 1)
        }
        let handedOver = engine(model, inlineTurns: 0)
        defer { handedOver.shutdown() }
        for character in "be fed".utf8 { _ = try await handedOver.feed(stream: "s", text: [character], topK: 3, client: 1) }
        let stats = await handedOver.stats()
        XCTAssertEqual(stats.stepsInline, 0, "\(stats)")
        XCTAssertEqual(stats.steps, 6)  // "be fed"
    }

    func test_aLongerFeed_isSteppedInlineAtMostInlineTurnsMinusOneTokens_thenByTheEngineThread() async throws {
        let model = Fixtures.model(cell: .gru)
        for turns in [1, 2, 5] {
            let engine = engine(model, inlineTurns: turns)
            defer { engine.shutdown() }
            let events = try await engine.feed(stream: "long", text: Array(String(repeating: "a big fed line, ", count: 3).utf8), topK: 2, client: 1)
            XCTAssertEqual(events.count, 48)  // 3 × 16 characters
            let stats = await engine.stats()
            // Each inline turn but the last steps one token; the last hands the rest over.
            XCTAssertEqual(stats.stepsInline, turns, "inlineTurns \(turns): \(stats)")
            XCTAssertEqual(stats.steps, 48)
        }
    }

    func test_eventsAreTheSame_inlineOrThroughTheEngineThread_forEveryCell() async throws {
        var rng = TestRNG(state: 7)
        for cell in CellKind.allCases {
            let model = Fixtures.model(cell: cell)
            let text = Fixtures.randomText(&rng, characters: 60)
            let chunks = Fixtures.randomChunks(Array(text.utf8), &rng)
            var results: [[TokenEvent]] = []
            for turns in [0, 3, 5] {
                let engine = engine(model, inlineTurns: turns)
                results.append(try await engine.feed(stream: "s", chunks: chunks))
                engine.shutdown()
            }
            XCTAssertEqual(results[1], results[0], "\(cell): inline turns 3 against none")
            XCTAssertEqual(results[2], results[0], "\(cell): inline turns 5 against none")
            Fixtures.assertMatchesOffline(results[2], model: model, tokens: try model.vocabulary.encode(text), stream: "\(cell)")
        }
    }
}
