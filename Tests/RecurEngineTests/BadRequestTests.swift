import RecurCore
import XCTest
@testable import RecurEngine

/// Bad requests fail with a typed error that says what is wrong, and change nothing.
final class BadRequestTests: XCTestCase {
    let model = Fixtures.model()

    func test_feed_withCharacterOutsideVocabulary_isBadValueAndLeavesStreamUnchanged() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let first = try await engine.feed(stream: "s", text: Array("abc".utf8), topK: nil, client: 1)
        let error = await assertThrowsKind(.badValue) {
            try await engine.feed(stream: "s", text: Array("dZe".utf8), topK: nil, client: 1)
        }
        XCTAssertEqual(error?.description, "cannot tokenize the text for stream 's': character U+005A 'Z' at offset 4 is not in the model's vocabulary (offsets count from the stream's start or last reset)")
        let info = try await engine.info(stream: "s")
        XCTAssertEqual(info.offset, 3)
        let rest = try await engine.feed(stream: "s", text: Array("de".utf8), topK: nil, client: 1)
        Fixtures.assertMatchesOffline(first + rest, model: model, tokens: try model.vocabulary.encode("abcde"), stream: "s")
    }

    func test_feed_rejectedOnNewStream_leavesNoStream() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        await assertThrowsKind(.badValue) { try await engine.feed(stream: "new", text: Array("Q".utf8), topK: nil, client: 1) }
        await assertThrows(.unknownStream("new")) { try await engine.info(stream: "new") }
        let count = await engine.stats().streams
        XCTAssertEqual(count, 0)
    }

    func test_feed_withBadTokenIdsOrK_isBadValue() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let V = model.config.vocabularySize
        await assertThrows(.badValue("token id \(V) at position 1 is outside the model's vocabulary of \(V) tokens")) {
            try await engine.feed(stream: "t", tokens: [0, Int32(V)], topK: nil, client: 1)
        }
        await assertThrows(.badValue("token id -1 at position 0 is outside the model's vocabulary of \(V) tokens")) {
            try await engine.feed(stream: "t", tokens: [-1], topK: nil, client: 1)
        }
        await assertThrows(.badValue("k 65 is outside 0...64")) { try await engine.feed(stream: "t", tokens: [0], topK: 65, client: 1) }
        await assertThrows(.badValue("k -1 is outside 0...64")) { try await engine.feed(stream: "t", text: [], topK: -1, client: 1) }
        let count = await engine.stats().streams
        XCTAssertEqual(count, 0)
    }

    func test_streamNames_mustBeShortAndFreeOfControlCharacters() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        await assertThrows(.badValue("a stream name must be 1 to 256 bytes of UTF-8, not 0")) {
            try await engine.feed(stream: "", text: [], topK: nil, client: 1)
        }
        await assertThrows(.badValue("a stream name must be 1 to 256 bytes of UTF-8, not 257")) {
            try await engine.info(stream: String(repeating: "x", count: 257))
        }
        await assertThrows(.badValue("stream name 'a\\u{a}b' contains a control, separator or bidirectional character (U+000A at character 1)")) {
            try await engine.reset(stream: "a\nb", client: 1)
        }
        await assertThrows(.badValue("stream name 'gnp\\u{202e}exe' contains a control, separator or bidirectional character (U+202E at character 3)")) {
            try await engine.feed(stream: "gnp\u{202E}exe", text: [], topK: nil, client: 1)
        }
        let ok = try await engine.feed(stream: String(repeating: "é", count: 128), text: Array("ab".utf8), topK: nil, client: 1)
        XCTAssertEqual(ok.count, 2)
    }

    func test_predict_withAbsurdArguments_isBadValue() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "p", text: Array("ab".utf8), topK: nil, client: 1)
        await assertThrows(.badValue("n 10001 is outside 0...10000")) {
            try await engine.predict(stream: "p", count: 10_001, temperature: 0, topK: nil, seed: nil, client: 1)
        }
        await assertThrows(.badValue("n -1 is outside 0...10000")) {
            try await engine.predict(stream: "p", count: -1, temperature: 0, topK: nil, seed: nil, client: 1)
        }
        for t: Float in [-1, .nan, .infinity, 0.0001, 5000] {
            await assertThrowsKind(.badValue) { try await engine.predict(stream: "p", count: 1, temperature: t, topK: nil, seed: nil, client: 1) }
        }
        await assertThrows(.badValue("k 0 for sampling is outside 1...64")) {
            try await engine.predict(stream: "p", count: 1, temperature: 1, topK: 0, seed: nil, client: 1)
        }
        await assertThrows(.unknownStream("missing")) {
            try await engine.predict(stream: "missing", count: 1, temperature: 0, topK: nil, seed: nil, client: 1)
        }
    }

    func test_feed_whenTooManyJobsQueued_isBusy() async throws {
        var options = EngineOptions()
        options.maxQueuedJobsPerStream = 8
        let engine = StreamEngine(model: model, options: options)  // not started: jobs stay queued
        defer { engine.shutdown() }
        let tasks = (0..<8).map { _ in Task { try await engine.feed(stream: "q", tokens: [1], topK: nil, client: 1) } }
        try await engine.waitUntilQueued(8, on: "q")
        await assertThrows(.busy("stream 'q' already has 8 requests waiting; wait for their replies before sending more")) {
            try await engine.feed(stream: "q", tokens: [1], topK: nil, client: 1)
        }
        await assertThrowsKind(.busy) { try await engine.reset(stream: "q", client: 1) }
        // Other streams are not affected.
        let other = Task { try await engine.feed(stream: "r", tokens: [1, 2], topK: nil, client: 1) }
        engine.start()
        var offsets: [Int] = []
        for task in tasks { offsets += try await task.value.map(\.offset) }
        XCTAssertEqual(offsets.sorted(), Array(1...8))
        let awaited = try await other.value.count
        XCTAssertEqual(awaited, 2)
    }

    func test_afterShutdown_everyRequestFailsWithShuttingDown() async throws {
        let engine = StreamEngine(model: model)
        let queued = Task { try await engine.feed(stream: "s", tokens: [1, 2], topK: nil, client: 1) }
        try await engine.waitUntilQueued(1, on: "s")
        engine.shutdown()
        do {
            _ = try await queued.value
            XCTFail("a queued feed should fail at shutdown")
        } catch {
            XCTAssertEqual(error as? EngineError, .shuttingDown)
        }
        await assertThrows(.shuttingDown) { try await engine.feed(stream: "s", tokens: [1], topK: nil, client: 1) }
        engine.shutdown()  // idempotent
    }

    func test_shutdownOfRunningEngine_failsPendingJobs() async throws {
        let engine = StreamEngine.started(model: model)
        _ = try await engine.feed(stream: "s", tokens: [1], topK: nil, client: 1)
        engine.shutdown()
        await assertThrows(.shuttingDown) { try await engine.info(stream: "s") }
    }
}
