import Foundation
import RecurCore
import RecurTestSupport
import XCTest
@testable import RecurEngine

/// A stream leaves memory only once the store has it: one the store cannot save stays
/// resident over the bound (counted in `stats`, logged through a `notStored` notice), and is
/// moved once the store works again.
final class UnstorableStreamTests: XCTestCase {
    func test_streamTheStoreCannotSave_staysResidentOverTheBound_thenMovesWhenItCan() async throws {
        let model = Fixtures.model(layers: 1, hidden: 16)
        var options = EngineOptions()
        options.maxResidentStreams = 1
        options.idleTimeout = nil
        let store = FakeStore(logsTokens: false)
        store.failSaves = true
        let notices = NoticeRecorder()
        let engine = StreamEngine.started(model: model, options: options, store: store, notices: notices)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "a", tokens: [1, 2, 3], topK: 1, client: 1)
        _ = try await engine.feed(stream: "b", tokens: [4], topK: 1, client: 1)  // "a" cannot be saved
        let told = await notices.wait(for: 1)
        XCTAssertEqual(told.map(\.0.kind), [.notStored], "\(told)")
        XCTAssertEqual(told.first?.1, [], "nothing is lost, so no client is told; the server logs it")
        XCTAssertTrue(told.first?.0.message.contains("stays in memory, 1 stream over the bound of 1") == true, "\(told)")
        var stats = await engine.stats()
        XCTAssertEqual(stats.streams, 2)
        XCTAssertEqual(stats.streamsOverBound, 1)
        XCTAssertEqual(stats.failedMovesToStore, 1)
        XCTAssertEqual(stats.streamsMovedToStore, 0)
        let a = try await engine.info(stream: "a", client: 1)
        XCTAssertEqual(a.offset, 3)
        XCTAssertFalse(store.contains(stream: "a"))

        store.failSaves = false
        _ = try await engine.feed(stream: "c", tokens: [5], topK: 1, client: 1)  // both idle streams go now
        stats = await engine.stats()
        XCTAssertEqual(stats.streams, 1)
        XCTAssertEqual(stats.streamsOverBound, 0)
        for (name, offset) in [("a", 3), ("b", 1)] {
            let info = try await engine.info(stream: name, client: 1)
            XCTAssertEqual(info.offset, offset, "stream \(name) after it was stored")
        }
    }

    func test_streamsLeftOverTheBound_moveToTheStoreOnTheirOwn_onceItTakesThemAgain() async throws {
        let model = Fixtures.model(layers: 1, hidden: 16)
        var options = EngineOptions()
        options.maxResidentStreams = 1
        options.idleTimeout = nil
        options.sweepInterval = 0.01
        options.storeRetryInterval = 0.2
        let store = FakeStore(logsTokens: false)
        store.failSaves = true
        let notices = NoticeRecorder()
        let engine = StreamEngine.started(model: model, options: options, store: store, notices: notices)
        defer { engine.shutdown() }
        for (i, name) in ["a", "b", "c", "d"].enumerated() {
            _ = try await engine.feed(stream: name, tokens: [Int32(i + 1), 2], topK: 1, client: 1)
        }
        let over = try await eventually("3 streams over the bound", { await engine.stats() }, until: { $0.streamsOverBound == 3 })
        // While the store fails, the sweep retries one stream per interval, not all of them.
        let failures = over.failedMovesToStore
        XCTAssertGreaterThanOrEqual(failures, 3, "\(over)")
        try await eventually("a retry while the store still fails", { await engine.stats() },
                             until: { $0.failedMovesToStore > failures })
        let retried = await engine.stats()
        XCTAssertLessThanOrEqual(retried.failedMovesToStore, failures + 2, "one stream per retry: \(retried)")
        XCTAssertEqual(retried.streamsOverBound, 3)

        store.failSaves = false  // space freed: no new stream is needed for them to go
        let relieved = try await eventually("no stream over the bound", { await engine.stats() },
                                            until: { $0.streamsOverBound == 0 && $0.streams == 1 })
        XCTAssertEqual(relieved.streamsMovedToStore, 3, "\(relieved)")
        for (i, name) in ["a", "b", "c", "d"].enumerated() {
            let info = try await engine.info(stream: name, client: 1)
            XCTAssertEqual(info.offset, 2, "stream \(name) (\(i)) after the store took it")
        }
        XCTAssertTrue(notices.notices.allSatisfy { $0.0.kind == .notStored }, "\(notices.notices)")
    }

    func test_streamBeingSaved_isTakenBackByItsNextRequest() async throws {
        let model = Fixtures.model(layers: 1, hidden: 16)
        var options = EngineOptions()
        options.maxResidentStreams = 1
        options.idleTimeout = nil
        let store = FakeStore(logsTokens: false)
        let engine = StreamEngine.started(model: model, options: options, store: store)
        defer { engine.shutdown() }
        let tokens: [Int32] = [1, 2, 3, 4, 5, 6]
        var events = try await engine.feed(stream: "a", tokens: Array(tokens[..<3]), topK: 1, client: 1)
        _ = try await engine.feed(stream: "b", tokens: [4], topK: 1, client: 1)
        events += try await engine.feed(stream: "a", tokens: Array(tokens[3...]), topK: 1, client: 1)
        Fixtures.assertMatchesOffline(events, model: model, tokens: tokens, stream: "a")
    }
}
