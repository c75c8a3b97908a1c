import RecurCore
import XCTest
@testable import RecurEngine
import RecurTestSupport

/// The write-ahead log of a store that `logsTokens`: every segment of a feed is appended, and
/// the append answered, before any of its tokens is absorbed.
final class WriteAheadTests: XCTestCase {
    func test_feed_withLoggingStore_appendsEachSegmentBeforeAbsorbingIt() async throws {
        let model = Fixtures.model(layers: 1, hidden: 16)
        var options = EngineOptions()
        options.maxTokensPerFeedJob = 256
        let store = FakeStore(logsTokens: true)
        store.holdAppends = true
        let engine = StreamEngine.started(model: model, options: options, store: store)
        defer { engine.shutdown() }
        var rng = TestRNG(state: 8)
        let text = Fixtures.randomText(&rng, characters: 600)
        let tokens = try model.vocabulary.encode(text)
        let feed = Task { try await engine.feed(stream: "d", text: Array(text.utf8), topK: nil, client: 1) }
        for (segment, absorbedBefore) in [0, 256, 512].enumerated() {
            store.waitForAppends(segment + 1)
            let offset = try await engine.info(stream: "d").offset
            XCTAssertEqual(offset, absorbedBefore, "segment \(segment): nothing of it is absorbed before its append is answered")
            store.releaseAppends()
        }
        let events = try await feed.value
        Fixtures.assertMatchesOffline(events, model: model, tokens: tokens, stream: "d")
        XCTAssertEqual(store.appends.map(\.offset), [0, 256, 512])
        XCTAssertEqual(store.appends.map(\.tokens.count), [256, 256, 88])
        XCTAssertEqual(store.appends.flatMap(\.tokens), tokens)
        store.holdAppends = false
        let more = try await engine.feed(stream: "d", tokens: [1, 2], topK: nil, client: 1)
        XCTAssertEqual(more.map(\.offset), [601, 602])
        XCTAssertEqual(store.appends.last?.offset, 600)
    }

    func test_feed_whenTheLogFails_isInternalAndStopsBeforeTheFailedSegment() async throws {
        let model = Fixtures.model(layers: 1, hidden: 16)
        var options = EngineOptions()
        options.maxTokensPerFeedJob = 4
        let store = FakeStore(logsTokens: true)
        store.failAppendsAfter = 2
        let engine = StreamEngine.started(model: model, options: options, store: store)
        defer { engine.shutdown() }
        let error = await assertThrowsKind(.internal) {
            try await engine.feed(stream: "d", text: Array("abcdefghijkl".utf8), topK: nil, client: 1)
        }
        XCTAssertEqual(error?.description, "the state store could not log 4 tokens of stream 'd': the disk is full")
        let offset = try await engine.info(stream: "d").offset
        XCTAssertEqual(offset, 8, "the two logged segments stay absorbed")
    }
}
