import RecurCore
import XCTest
@testable import RecurEngine

/// Idle expiry and the bound on resident streams: each drops a stream with a notice to the
/// clients that used it, and the stream is unknown afterwards.
final class ResidencyTests: XCTestCase {
    let model = Fixtures.model(layers: 1, hidden: 16)

    func test_idleStream_expiresWithNoticeToSubscribers() async throws {
        var options = EngineOptions()
        options.idleTimeout = 0.3
        options.sweepInterval = 0.05
        let notices = NoticeRecorder()
        let engine = StreamEngine.started(model: model, options: options, notices: notices)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "old", text: Array("abc".utf8), topK: nil, client: 7)
        _ = try await engine.feed(stream: "old", text: Array("d".utf8), topK: nil, client: 8)
        let received = await notices.wait(for: 1)
        XCTAssertEqual(received.first?.0.kind, .expired)
        XCTAssertEqual(received.first?.0.stream, "old")
        XCTAssertEqual(received.first?.1, [7, 8])
        await assertThrows(.unknownStream("old")) { try await engine.info(stream: "old") }
        await assertThrows(.unknownStream("old")) { try await engine.predict(stream: "old", count: 1, temperature: 0, topK: nil, seed: nil, client: 7) }
        let streams = await engine.stats().streams
        XCTAssertEqual(streams, 0)
    }

    func test_activeStream_doesNotExpire() async throws {
        var options = EngineOptions()
        options.idleTimeout = 0.4
        options.sweepInterval = 0.05
        let notices = NoticeRecorder()
        let engine = StreamEngine.started(model: model, options: options, notices: notices)
        defer { engine.shutdown() }
        // Time is the subject here: 8 feeds 100 ms apart keep the stream busy for twice its idle timeout.
        for _ in 0..<8 {
            _ = try await engine.feed(stream: "busy", text: Array("ab".utf8), topK: nil, client: 1)
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTAssertTrue(notices.notices.isEmpty)
        let offset = try await engine.info(stream: "busy").offset
        XCTAssertEqual(offset, 16)
    }

    func test_creatingBeyondResidentBound_evictsLeastRecentlyActiveIdleStream() async throws {
        var options = EngineOptions()
        options.maxResidentStreams = 2
        let notices = NoticeRecorder()
        let engine = StreamEngine.started(model: model, options: options, notices: notices)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "a", text: Array("ab".utf8), topK: nil, client: 1)
        _ = try await engine.feed(stream: "b", text: Array("cd".utf8), topK: nil, client: 2)
        _ = try await engine.feed(stream: "a", text: Array("e".utf8), topK: nil, client: 1)  // a is now the more recent
        _ = try await engine.feed(stream: "c", text: Array("fg".utf8), topK: nil, client: 3)
        let received = await notices.wait(for: 1)
        XCTAssertEqual(received.map(\.0.kind), [.evicted])
        XCTAssertEqual(received.map(\.0.stream), ["b"])
        XCTAssertEqual(received.map(\.1), [[2]])
        await assertThrows(.unknownStream("b")) { try await engine.info(stream: "b") }
        let names = await engine.list().map(\.stream)
        XCTAssertEqual(names, ["a", "c"])
    }

    func test_creatingBeyondResidentBound_whenNoStreamIsIdle_isBusy() async throws {
        var options = EngineOptions()
        options.maxResidentStreams = 1
        let engine = StreamEngine(model: model, options: options)  // not started: jobs stay queued
        defer { engine.shutdown() }
        let pending = Task { try await engine.feed(stream: "a", text: Array("ab".utf8), topK: nil, client: 1) }
        try await engine.waitUntilQueued(1, on: "a")
        let error = await assertThrowsKind(.busy) { try await engine.feed(stream: "b", text: Array("c".utf8), topK: nil, client: 2) }
        XCTAssertEqual(error?.description, "the engine holds its maximum of 1 streams and every one is busy; try again shortly")
        engine.start()
        let awaited = try await pending.value.count
        XCTAssertEqual(awaited, 2)
    }

    func test_fork_beyondResidentBound_neverEvictsItsOwnSource() async throws {
        var options = EngineOptions()
        options.maxResidentStreams = 1
        let engine = StreamEngine.started(model: model, options: options)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "only", text: Array("ab".utf8), topK: nil, client: 1)
        await assertThrowsKind(.busy) { try await engine.fork(stream: "only", into: "copy", client: 1) }
        let offset = try await engine.info(stream: "only").offset
        XCTAssertEqual(offset, 2)
    }
}
