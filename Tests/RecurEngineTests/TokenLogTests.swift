import RecurCore
import RecurTestSupport
import XCTest
@testable import RecurEngine

/// The write-ahead hook: every segment of a feed is appended, and the append awaited, before any
/// of its tokens is absorbed.
final class TokenLogTests: XCTestCase {
    /// Records appends and, at each, what the engine reported as the stream's offset.
    actor RecordingLog: TokenLog {
        var appends: [(stream: String, offset: Int, tokens: [Int32], absorbedAtAppend: Int)] = []
        var engine: StreamEngine?
        var failAfter: Int?

        func attach(_ engine: StreamEngine, failAfter: Int? = nil) {
            self.engine = engine
            self.failAfter = failAfter
        }

        func append(stream: String, offset: Int, tokens: [Int32]) async throws {
            if let failAfter, appends.count >= failAfter { throw LogFull() }
            let absorbed = (try? await engine?.info(stream: stream).offset) ?? -1
            appends.append((stream, offset, tokens, absorbed))
        }
    }

    struct LogFull: Error, CustomStringConvertible {
        var description: String { "the disk is full" }
    }

    func test_feed_withTokenLog_appendsEachSegmentBeforeAbsorbingIt() async throws {
        let model = Fixtures.model(layers: 1, hidden: 16)
        var options = EngineOptions()
        options.maxTokensPerFeedJob = 256
        let log = RecordingLog()
        let engine = StreamEngine.started(model: model, options: options, tokenLog: log)
        defer { engine.shutdown() }
        await log.attach(engine)
        var rng = TestRNG(state: 8)
        let text = Fixtures.randomText(&rng, characters: 600)
        let tokens = try model.vocabulary.encode(text)
        let events = try await engine.feed(stream: "d", text: Array(text.utf8), topK: nil, client: 1)
        Fixtures.assertMatchesOffline(events, model: model, tokens: tokens, stream: "d")
        let appends = await log.appends
        XCTAssertEqual(appends.map(\.offset), [0, 256, 512])
        XCTAssertEqual(appends.map(\.tokens.count), [256, 256, 88])
        XCTAssertEqual(appends.flatMap(\.tokens), tokens)
        XCTAssertEqual(appends.map(\.absorbedAtAppend), [0, 256, 512], "nothing of a segment is absorbed before its append returns")
        let more = try await engine.feed(stream: "d", tokens: [1, 2], topK: nil, client: 1)
        XCTAssertEqual(more.map(\.offset), [601, 602])
        let last = await log.appends.last
        XCTAssertEqual(last?.offset, 600)
    }

    func test_feed_whenTokenLogFails_isInternalAndStopsBeforeTheFailedSegment() async throws {
        let model = Fixtures.model(layers: 1, hidden: 16)
        var options = EngineOptions()
        options.maxTokensPerFeedJob = 4
        let log = RecordingLog()
        let engine = StreamEngine.started(model: model, options: options, tokenLog: log)
        defer { engine.shutdown() }
        await log.attach(engine, failAfter: 2)
        let error = await assertThrowsCode("internal") {
            try await engine.feed(stream: "d", text: Array("abcdefghijkl".utf8), topK: nil, client: 1)
        }
        XCTAssertEqual(error?.description, "the token log could not record 4 tokens of stream 'd': the disk is full")
        let offset = try await engine.info(stream: "d").offset
        XCTAssertEqual(offset, 8, "the two logged segments stay absorbed")
    }
}
