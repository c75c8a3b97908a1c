import Foundation
import RecurCore
import RecurTestSupport
import XCTest
@testable import RecurEngine

/// A short request arriving while many long feeds are being stepped (clients that never read
/// their replies, bulk loads) is finished in about as many steps as it has tokens, and those
/// steps stay short; every stream's results are still exactly `Evaluator`'s.
///
/// The step counts are exact, not timed: the probe is submitted from a completion, which the
/// engine thread runs between two steps, and its own completion reads the counters there too.
final class FairSchedulingTests: XCTestCase {
    /// What the probe's completion saw: steps and rows so far, tokens absorbed, its events.
    private struct ProbeSeen: Sendable {
        var steps = 0, rows = 0, tokens = 0
        var events: [TokenEvent] = []
    }

    private final class Box<T: Sendable>: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: T?
        func set(_ value: T) { lock.lock(); stored = value; lock.unlock() }
        var value: T? { lock.lock(); defer { lock.unlock() }; return stored }
    }

    private static func counters(_ core: EngineCore) -> (steps: Int, rows: Int, tokens: Int) {
        core.lock.lock()
        defer { core.lock.unlock() }
        return (core.stepsTaken, core.rowsStepped, core.tokensAbsorbed)
    }

    /// Runs `longStreams` feeds of `longCharacters` each, and once a trigger feed
    /// (started with them) is done, a 16-character probe; returns the probe's steps and rows.
    private func runProbe(options: EngineOptions, longStreams: Int, longCharacters: Int, triggerCharacters: Int = 100,
                          file: StaticString = #filePath, line: UInt = #line) async throws -> (steps: Int, rows: Int, longTokens: Int, tokensAtProbe: Int) {
        let model = Fixtures.model(cell: .lstm, layers: 2)
        let engine = StreamEngine(model: model, options: options)
        defer { engine.shutdown() }
        let core = engine.core
        var rng = TestRNG(state: 21)
        let texts = (0..<longStreams).map { _ in Fixtures.randomText(&rng, characters: longCharacters) }
        let trigger = Fixtures.randomText(&rng, characters: triggerCharacters)
        let probe = Fixtures.randomText(&rng, characters: 16)
        let longs = texts.enumerated().map { i, text in
            Task { try await engine.feed(stream: "long-\(i)", text: Array(text.utf8), topK: 3, client: 1) }
        }
        let started = Box<(steps: Int, rows: Int)>()
        let seen = Box<Result<ProbeSeen, EngineError>>()
        let probeJob = Job(.feed(.waiting(.text(Array(probe.utf8), flush: false), createdStream: false)), client: 2, topK: 3) { result in
            // On the engine thread, between two steps.
            let now = Self.counters(core)
            seen.set(result.map { output in
                guard case .events(let events) = output else { return ProbeSeen() }
                return ProbeSeen(steps: now.steps, rows: now.rows, tokens: now.tokens, events: events)
            })
        }
        let triggerJob = Job(.feed(.waiting(.text(Array(trigger.utf8), flush: false), createdStream: false)), client: 2, topK: 3) { result in
            // On the engine thread, between two steps: the long feeds are well under way.
            let now = Self.counters(core)
            started.set((now.steps, now.rows))
            do throws(EngineError) {
                try core.submit(probeJob, to: "probe", create: true)
            } catch {
                seen.set(.failure(error))
            }
        }
        try core.submit(triggerJob, to: "trigger", create: true)
        try await eventually("\(longStreams + 1) streams queued", { await engine.list().count }, until: { $0 >= longStreams + 1 })
        engine.start()
        let result = try await eventually("the probe's completion", timeout: .seconds(60), { seen.value }, until: { $0 != nil })!
        let probeSeen = try result.get()
        let before = try XCTUnwrap(started.value, "the trigger finished before the probe", file: file, line: line)
        Fixtures.assertMatchesOffline(probeSeen.events, model: model, tokens: try model.vocabulary.encode(probe), stream: "probe",
                                      file: file, line: line)
        for (i, task) in longs.enumerated() {
            Fixtures.assertMatchesOffline(try await task.value, model: model, tokens: try model.vocabulary.encode(texts[i]),
                                          stream: "long-\(i)", file: file, line: line)
        }
        let longTokens = try texts.reduce(0) { $0 + (try model.vocabulary.encode($1)).count }
        return (probeSeen.steps - before.steps, probeSeen.rows - before.rows, longTokens, probeSeen.tokens)
    }

    func test_shortFeed_whileManyLongFeedsRun_finishesInItsOwnTokenCountOfShortSteps() async throws {
        var options = EngineOptions()
        options.maxBatch = 16
        options.bulkRowsBesidePrompt = 4
        let seen = try await runProbe(options: options, longStreams: 40, longCharacters: 1500)
        XCTAssertLessThan(seen.tokensAtProbe, seen.longTokens, "the long feeds were still running when the probe finished")
        // It joins the step after the one selected when it was submitted, then takes one row in
        // each of its 16 steps; round-robin over 41 streams in batches of 16 took about 42.
        XCTAssertLessThanOrEqual(seen.steps, 17, "steps the 16-token probe took beside 40 long feeds")
        // The first of those steps was chosen before the probe came (16 long rows); each of its
        // own 16 had at most 4 long rows beside it.
        XCTAssertLessThanOrEqual(seen.rows, 16 + 16 * (1 + options.bulkRowsBesidePrompt),
                                 "rows in the probe's steps (\(seen.rows) in \(seen.steps)): at most 4 long rows beside it")
    }

    func test_shortFeed_withLargeBatch_sharesStepsWithFewLongRows() async throws {
        // The default maxBatch takes every stream in each step: the probe's steps are as few as
        // before, but each one carried all 40 long rows (what made it slow under load).
        var options = EngineOptions()
        options.bulkRowsBesidePrompt = 8
        let seen = try await runProbe(options: options, longStreams: 40, longCharacters: 1500)
        XCTAssertLessThan(seen.tokensAtProbe, seen.longTokens, "the long feeds were still running when the probe finished")
        XCTAssertLessThanOrEqual(seen.steps, 17)
        // The step chosen before the probe came carried the 40 long rows; each of the probe's
        // own 16 at most 8 beside it (before fair admission: all 40, 680 rows in all).
        XCTAssertLessThanOrEqual(seen.rows, 40 + 16 * 9, "rows in the probe's steps (\(seen.rows) in \(seen.steps))")
    }

    func test_shortFeed_whileABurstOfNewFeedsIsInItsPromptRows_goesFirst() async throws {
        // 40 feeds started together are all within their first promptRows (about 30 rows each
        // when the probe comes): the probe, with none taken, goes ahead of them, and the steps
        // take at most promptRowsPerStep of them.
        var options = EngineOptions()
        options.promptRowsPerStep = 8
        options.bulkRowsBesidePrompt = 4
        let seen = try await runProbe(options: options, longStreams: 40, longCharacters: 1500, triggerCharacters: 30)
        XCTAssertLessThan(seen.tokensAtProbe, seen.longTokens, "the long feeds were still running when the probe finished")
        XCTAssertLessThanOrEqual(seen.steps, 17, "steps the 16-token probe took beside a burst of 40 new feeds")
        // Every step here has at most 8 prompt rows and 4 others (before: all 41 streams, 697 rows).
        XCTAssertLessThanOrEqual(seen.rows, 17 * 12, "rows in the probe's steps (\(seen.rows) in \(seen.steps))")
    }

    func test_promptRowsZero_isPlainTurns() async throws {
        // --prompt-rows 0: every request alike, in turn (the behaviour before fair admission).
        var options = EngineOptions()
        options.maxBatch = 16
        options.promptRows = 0
        let seen = try await runProbe(options: options, longStreams: 40, longCharacters: 1500)
        XCTAssertLessThan(seen.tokensAtProbe, seen.longTokens, "the long feeds were still running when the probe finished")
        XCTAssertGreaterThan(seen.steps, 32, "in turn with 40 others in batches of 16, the probe waits between its rows")
    }
}
