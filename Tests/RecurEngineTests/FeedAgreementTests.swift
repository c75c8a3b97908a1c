import RecurCore
import RecurTestSupport
import XCTest
@testable import RecurEngine

/// A stream's events equal `Evaluator` (what `recur eval --per-token` computes) exactly, whatever
/// the chunking, the interleaving with other streams and the batch it is stepped in.
final class FeedAgreementTests: XCTestCase {
    func test_feed_whenTextSplitAtRandomBytes_equalsEvaluatorOnWholeText() async throws {
        for cell in CellKind.allCases {
            let model = Fixtures.model(cell: cell)
            let engine = StreamEngine.started(model: model)
            defer { engine.shutdown() }
            var rng = TestRNG(state: 11)
            for trial in 0..<4 {
                let text = Fixtures.randomText(&rng, characters: 150)
                let tokens = try model.vocabulary.encode(text)
                let chunks = Fixtures.randomChunks(Array(text.utf8), &rng)
                let events = try await engine.feed(stream: "s\(trial)", chunks: chunks)
                Fixtures.assertMatchesOffline(events, model: model, tokens: tokens, stream: "\(cell) s\(trial)")
            }
        }
    }

    func test_feed_withWordTokenizerAndFlush_equalsEvaluatorOnWholeText() async throws {
        let model = Fixtures.wordModel()
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let text = "the cat sat on the mat . the dog , a zebra ran to the cat"
        var rng = TestRNG(state: 5)
        var events = try await engine.feed(stream: "w", chunks: Fixtures.randomChunks(Array(text.utf8), &rng))
        events += try await engine.feed(stream: "w", text: [], topK: nil, flush: true, client: 1)
        Fixtures.assertMatchesOffline(events, model: model, tokens: try model.vocabulary.encode(text), stream: "w")
    }

    func test_feed_fromManyConcurrentTasks_eachStreamEqualsEvaluator() async throws {
        let model = Fixtures.model(cell: .lstm)
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let streams = 64
        let results = try await withThrowingTaskGroup(of: (Int, String, [TokenEvent]).self) { group in
            for s in 0..<streams {
                group.addTask {
                    var rng = TestRNG(state: UInt64(1000 + s))
                    let text = Fixtures.randomText(&rng, characters: 40 + rng.below(120))
                    let chunks = Fixtures.randomChunks(Array(text.utf8), &rng)
                    let events = try await engine.feed(stream: "stream-\(s)", chunks: chunks, client: ClientID(s))
                    return (s, text, events)
                }
            }
            var all: [(Int, String, [TokenEvent])] = []
            for try await result in group { all.append(result) }
            return all
        }
        XCTAssertEqual(results.count, streams)
        for (s, text, events) in results {
            XCTAssertTrue(events.allSatisfy { $0.stream == "stream-\(s)" })
            Fixtures.assertMatchesOffline(events, model: model, tokens: try model.vocabulary.encode(text), stream: "stream-\(s)")
        }
        let stats = await engine.stats()
        XCTAssertEqual(stats.tokens, results.reduce(0) { $0 + $1.2.count })
        XCTAssertEqual(stats.streams, streams)
    }

    func test_feed_whenStreamsQueuedBeforeStart_stepsThemAsOneBatch() async throws {
        let model = Fixtures.model(cell: .gru)
        let engine = StreamEngine(model: model)
        defer { engine.shutdown() }
        var rng = TestRNG(state: 3)
        let texts = (0..<20).map { _ in Fixtures.randomText(&rng, characters: 10) }
        let tokens = try texts.map { try model.vocabulary.encode($0) }
        let steps = tokens.map(\.count).max()!
        let tasks = texts.enumerated().map { i, text in
            Task { try await engine.feed(stream: "b\(i)", text: Array(text.utf8), topK: 3, client: 1) }
        }
        try await eventually("\(texts.count) streams created", { await engine.list().count }, until: { $0 >= texts.count })
        engine.start()
        for (i, task) in tasks.enumerated() {
            Fixtures.assertMatchesOffline(try await task.value, model: model, tokens: tokens[i], stream: "b\(i)")
        }
        let stats = await engine.stats()
        XCTAssertEqual(stats.steps, steps, "every step carries all streams that still have tokens")
        XCTAssertEqual(stats.meanBatch, Double(tokens.reduce(0) { $0 + $1.count }) / Double(steps))
    }

    func test_feed_whenMoreStreamsThanMaxBatch_takesTurnsAndStillEqualsEvaluator() async throws {
        let model = Fixtures.model(cell: .rnn, layers: 3)
        var options = EngineOptions()
        options.maxBatch = 4
        let engine = StreamEngine(model: model, options: options)
        defer { engine.shutdown() }
        var rng = TestRNG(state: 9)
        let texts = (0..<10).map { _ in Fixtures.randomText(&rng, characters: 30) }
        let tasks = texts.enumerated().map { i, text in
            Task { try await engine.feed(stream: "r\(i)", text: Array(text.utf8), topK: nil, client: 1) }
        }
        try await eventually("\(texts.count) streams created", { await engine.list().count }, until: { $0 >= texts.count })
        engine.start()
        for (i, task) in tasks.enumerated() {
            Fixtures.assertMatchesOffline(try await task.value, model: model, tokens: try model.vocabulary.encode(texts[i]), stream: "r\(i)")
        }
        let stats = await engine.stats()
        // 300 tokens in batches of at most 4; round-robin keeps the streams level, so only the
        // last steps can be short.
        XCTAssertGreaterThanOrEqual(stats.steps, 75)
        XCTAssertLessThanOrEqual(stats.steps, 78)
    }

    func test_feed_nextListsEqualTopKOfLogSoftmaxAfterEachToken() async throws {
        let model = Fixtures.model(cell: .lstm, layers: 1)
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let text = "abc é漢😀 hello.\nfed"
        let tokens = try model.vocabulary.encode(text)
        for k in [0, 1, 5, 64] {
            let events = try await engine.feed(stream: "k\(k)", text: Array(text.utf8), topK: k, client: 1)
            XCTAssertEqual(events.map(\.next), Fixtures.offlineTopK(model, tokens, k: k), "k = \(k)")
        }
        let defaults = try await engine.feed(stream: "default", text: Array(text.utf8), topK: nil, client: 1)
        XCTAssertTrue(defaults.allSatisfy { $0.next.count == 5 })
    }

    func test_feed_tokenIds_equalsEvaluator() async throws {
        let model = Fixtures.model()
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let tokens: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
        let first = try await engine.feed(stream: "ids", tokens: Array(tokens[..<4]), topK: nil, client: 1)
        let rest = try await engine.feed(stream: "ids", tokens: Array(tokens[4...]), topK: nil, client: 1)
        Fixtures.assertMatchesOffline(first + rest, model: model, tokens: tokens, stream: "ids")
    }

    func test_feed_jobsOfOneStream_runInSubmissionOrder() async throws {
        let model = Fixtures.model()
        let engine = StreamEngine(model: model)
        defer { engine.shutdown() }
        let results = OrderedResults()
        let V = Int32(model.config.vocabularySize)
        let tokens = (0..<50).map { Int32($0) % V }
        for (i, token) in tokens.enumerated() {
            let job = Job(.feed(.waiting(.tokens([token]), createdStream: false)), client: 1, topK: 1) { results.append(i, $0) }
            try engine.core.submit(job, to: "fifo", create: true)
        }
        engine.start()
        let finished = try await results.wait(for: tokens.count)
        XCTAssertEqual(finished.map(\.0), Array(0..<50), "completions in submission order")
        let events = finished.flatMap { (_, result) -> [TokenEvent] in
            guard case .success(.events(let events)) = result else { return [] }
            return events
        }
        Fixtures.assertMatchesOffline(events, model: model, tokens: tokens, stream: "fifo")
    }
}

/// Completions in the order they arrived.
final class OrderedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(Int, Result<JobOutput, EngineError>)] = []

    func append(_ index: Int, _ result: Result<JobOutput, EngineError>) {
        lock.lock()
        items.append((index, result))
        lock.unlock()
    }

    private func snapshot() -> [(Int, Result<JobOutput, EngineError>)] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }

    /// Waits until `count` completions arrived (`eventually`: failing with how many did).
    func wait(for count: Int, file: StaticString = #filePath, line: UInt = #line) async throws -> [(Int, Result<JobOutput, EngineError>)] {
        try await eventually("\(count) completions", file: file, line: line, { self.snapshot() }, until: { $0.count >= count })
    }
}
