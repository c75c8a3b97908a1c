import RecurCore
import XCTest
@testable import RecurEngine

/// Fork, reset, end, info, list, stats and disconnect, with the notices other clients get.
final class StreamLifecycleTests: XCTestCase {
    let model = Fixtures.model()

    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    func test_fork_thenFeedBoth_eachEqualsEvaluatorOnItsOwnText() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let common = bytes("abc dé漢"), left = bytes("€fgh😀 ij"), right = bytes("k.lm,nop")
        // The common part ends inside 漢, so the fork must carry the tokenizer's held bytes too.
        let shared = try await engine.feed(stream: "src", text: Array(common.dropLast(1)), topK: nil, client: 1)
        try await engine.fork(stream: "src", into: "copy", client: 2)
        let a = try await engine.feed(stream: "src", text: [common.last!] + left, topK: nil, client: 1)
        let b = try await engine.feed(stream: "copy", text: [common.last!] + right, topK: nil, client: 2)
        Fixtures.assertMatchesOffline(shared + a, model: model, tokens: try model.vocabulary.encode(String(decoding: common + left, as: UTF8.self)), stream: "src")
        Fixtures.assertMatchesOffline(shared + b, model: model, tokens: try model.vocabulary.encode(String(decoding: common + right, as: UTF8.self)), stream: "copy")
        let infoA = try await engine.info(stream: "src"), infoB = try await engine.info(stream: "copy")
        XCTAssertEqual(infoA.offset, shared.count + a.count)
        XCTAssertEqual(infoB.offset, shared.count + b.count)
    }

    func test_fork_whenTargetExistsOrSourceMissing_fails() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "x", text: bytes("ab"), topK: nil, client: 1)
        _ = try await engine.feed(stream: "y", text: bytes("cd"), topK: nil, client: 1)
        await assertThrows(.streamExists("y")) { try await engine.fork(stream: "x", into: "y", client: 1) }
        await assertThrows(.unknownStream("nope")) { try await engine.fork(stream: "nope", into: "z", client: 1) }
        let names = await engine.list().map(\.stream)
        XCTAssertEqual(names, ["x", "y"])
    }

    func test_fork_queuedBehindFeeds_copiesTheStateAfterThem() async throws {
        let engine = StreamEngine(model: model)
        defer { engine.shutdown() }
        let text = bytes("abcdefgh")
        let feed = Task { try await engine.feed(stream: "s", text: text, topK: nil, client: 1) }
        try await engine.waitUntilQueued(1, on: "s")
        let fork = Task { try await engine.fork(stream: "s", into: "t", client: 1) }
        try await engine.waitUntilQueued(2, on: "s")
        let more = Task { try await engine.feed(stream: "t", text: Array("ij".utf8), topK: nil, client: 1) }
        try await engine.waitUntilQueued(2, on: "t")
        engine.start()
        let first = try await feed.value
        try await fork.value
        let second = try await more.value
        Fixtures.assertMatchesOffline(first + second, model: model, tokens: try model.vocabulary.encode("abcdefghij"), stream: "t")
    }

    func test_reset_thenFeed_startsFromOffsetOneAndEqualsEvaluatorOnNewText() async throws {
        let notices = NoticeRecorder()
        let engine = StreamEngine.started(model: model, notices: notices)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "r", text: bytes("abcdé"), topK: nil, client: 1)
        _ = try await engine.feed(stream: "r", text: bytes("fg"), topK: nil, client: 2)
        _ = try await engine.feed(stream: "r", text: [0xE6], topK: nil, client: 1)  // first byte of 漢, held
        try await engine.reset(stream: "r", client: 1)
        let info = try await engine.info(stream: "r")
        XCTAssertEqual([info.offset, info.scoredTokens, info.pendingText], [0, 0, 0])
        XCTAssertNil(info.meanLoss)
        let events = try await engine.feed(stream: "r", text: bytes("hij klm"), topK: nil, client: 1)
        Fixtures.assertMatchesOffline(events, model: model, tokens: try model.vocabulary.encode("hij klm"), stream: "r")
        let received = await notices.wait(for: 1)
        XCTAssertEqual(received.map(\.0.kind), [.reset])
        XCTAssertEqual(received.map(\.1), [[2]], "only the other client is told")
    }

    func test_end_dropsTheStream_andNotifiesOtherSubscribers() async throws {
        let notices = NoticeRecorder()
        let engine = StreamEngine.started(model: model, notices: notices)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "e", text: bytes("abc"), topK: nil, client: 1)
        _ = try await engine.feed(stream: "e", text: bytes("d"), topK: nil, client: 2)
        _ = try await engine.feed(stream: "e", text: bytes("f"), topK: nil, client: 3)
        engine.disconnect(client: 3)
        try await engine.end(stream: "e", client: 1)
        await assertThrows(.unknownStream("e")) { try await engine.info(stream: "e") }
        await assertThrows(.unknownStream("e")) { try await engine.end(stream: "e", client: 1) }
        await assertThrows(.unknownStream("e")) { try await engine.reset(stream: "e", client: 1) }
        let received = await notices.wait(for: 1)
        XCTAssertEqual(received.count, 1)
        XCTAssertEqual(received.first?.0, StreamNotice(stream: "e", kind: .ended, message: "stream 'e' was ended by another client"))
        XCTAssertEqual(received.first?.1, [2], "the ender and the disconnected client are not told")
        // Feeding the name again starts a new stream.
        let events = try await engine.feed(stream: "e", text: bytes("hij"), topK: nil, client: 1)
        XCTAssertEqual(events.first?.offset, 1)
        XCTAssertNil(events.first?.logprob)
    }

    func test_end_withFeedQueuedBehindIt_recreatesTheStreamForThatFeed() async throws {
        let engine = StreamEngine(model: model)
        defer { engine.shutdown() }
        let first = Task { try await engine.feed(stream: "q", text: Array("abc".utf8), topK: nil, client: 1) }
        try await engine.waitUntilQueued(1, on: "q")
        let end = Task { try await engine.end(stream: "q", client: 1) }
        try await engine.waitUntilQueued(2, on: "q")
        let predict = Task { try await engine.predict(stream: "q", count: 1, temperature: 0, topK: nil, seed: nil, client: 1) }
        try await engine.waitUntilQueued(3, on: "q")
        let second = Task { try await engine.feed(stream: "q", text: Array("de".utf8), topK: nil, client: 1) }
        try await engine.waitUntilQueued(4, on: "q")
        engine.start()
        let awaited = try await first.value.map(\.offset)
        XCTAssertEqual(awaited, [1, 2, 3])
        try await end.value
        do {
            _ = try await predict.value
            XCTFail("predict after end should fail")
        } catch {
            XCTAssertEqual(error as? EngineError, .unknownStream("q"))
        }
        let events = try await second.value
        Fixtures.assertMatchesOffline(events, model: model, tokens: try model.vocabulary.encode("de"), stream: "q")
    }

    func test_info_reportsOffsetLossAndPendingBytes() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let before = Date().timeIntervalSince1970
        let events = try await engine.feed(stream: "i", text: bytes("abcd") + [0xE6, 0xBC], topK: nil, client: 1)
        let info = try await engine.info(stream: "i")
        XCTAssertEqual(info.offset, 4)
        XCTAssertEqual(info.scoredTokens, 3)
        XCTAssertEqual(info.pendingText, 2, "two bytes of 漢 are held")
        let loss = -events.compactMap(\.logprob).reduce(0) { $0 + Double($1) } / 3
        XCTAssertEqual(info.meanLoss!, loss, accuracy: 1e-12)
        XCTAssertGreaterThanOrEqual(info.lastActivity, before)
        XCTAssertGreaterThanOrEqual(info.lastActivity, info.created)
        await assertThrows(.unknownStream("other")) { try await engine.info(stream: "other") }
    }

    func test_info_withWordTokenizer_countsTheHeldBackWord() async throws {
        let engine = StreamEngine.started(model: Fixtures.wordModel())
        defer { engine.shutdown() }
        let events = try await engine.feed(stream: "w", text: bytes("the cat"), topK: nil, client: 1)
        XCTAssertEqual(events.count, 2, "'the' and ' ' are certain; 'cat' may continue")
        let info = try await engine.info(stream: "w")
        XCTAssertEqual(info.pendingText, 3)
    }

    func test_statsAndList_countStreamsTokensAndSteps() async throws {
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "b", text: bytes("abc"), topK: nil, client: 1)
        _ = try await engine.feed(stream: "a", text: bytes("de"), topK: nil, client: 1)
        let stats = await engine.stats()
        XCTAssertEqual(stats.streams, 2)
        XCTAssertEqual(stats.tokens, 5)
        XCTAssertEqual(stats.steps, 5, "sequential feeds are stepped alone")
        XCTAssertEqual(stats.meanBatch, 1)
        XCTAssertGreaterThan(stats.tokensPerSecond, 0)
        XCTAssertGreaterThan(stats.uptime, 0)
        let list = await engine.list()
        XCTAssertEqual(list.map(\.stream), ["a", "b"])
        XCTAssertEqual(list.map(\.offset), [2, 3])
    }
}
