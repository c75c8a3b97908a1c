import Foundation
import RecurTestSupport
import XCTest

/// Streams over the real socket report exactly what `recur eval --per-token` computes for the
/// same text, whatever the chunking, the interleaving and the batching.
final class FeedAgreementTests: XCTestCase {
    /// Hamlet's lines three times: about 1,800 characters, all in the Shakespeare vocabulary.
    private func sampleText() throws -> String {
        String(repeating: try String(contentsOf: Repository.hamlet, encoding: .utf8), count: 3)
    }

    func testFeed_manyConcurrentClientsWithRandomChunks_eventsEqualRecurEval() throws {
        let text = try sampleText()
        let daemon = try Daemon.start(self)
        let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: text, in: daemon.directory)
        let clients = 8
        let seed = UInt64.random(in: 0...UInt64(UInt32.max))
        let results = LockedResults(count: clients)
        DispatchQueue.concurrentPerform(iterations: clients) { index in
            do {
                var generator = SeededGenerator(seed: seed &+ UInt64(index))
                let client = try daemon.connect()
                var events: [[String: Any]] = []
                for chunk in randomChunks(text, maxLength: index % 2 == 0 ? 7 : 200, using: &generator) {
                    let (chunkEvents, reply) = try client.request(["op": "feed", "stream": "c\(index)", "text": chunk, "k": 3])
                    guard reply["done"] as? Bool == true else { throw TestFailure("feed failed: \(reply)") }
                    events += chunkEvents
                }
                results.set(index, .success(events))
            } catch {
                results.set(index, .failure(error))
            }
        }
        for index in 0..<clients {
            switch results.get(index) {
            case .success(let events):
                assertEventsMatchEval(events, reference, stream: "c\(index)")
                XCTAssertEqual((events.last?["next"] as? [Any])?.count, 3, "k = 3 predictions per event")
            case .failure(let error):
                XCTFail("client \(index) (seed \(seed)): \(error)")
            case nil:
                XCTFail("client \(index) did not finish")
            }
        }
        let (_, stats) = try daemon.connect().request(["op": "stats"])
        XCTAssertGreaterThanOrEqual(stats["tokens"] as? Int ?? 0, clients * text.count)
        print("chunk seed \(seed); engine stats: \(stats)")
    }

    func testFeed_streamResumedOnNewConnection_continuesFromItsOffset() throws {
        let text = try sampleText()
        let daemon = try Daemon.start(self)
        let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: text, in: daemon.directory)
        let cut = text.index(text.startIndex, offsetBy: 700)
        var events: [[String: Any]] = []
        do {
            let first = try daemon.connect()
            events += try first.request(["op": "feed", "stream": "resumed", "text": String(text[..<cut])]).events
        }  // the first connection closes here; the named stream stays
        let second = try daemon.connect()
        let (info, infoReply) = try second.request(["op": "info", "stream": "resumed"])
        XCTAssertTrue(info.isEmpty)
        XCTAssertEqual(infoReply["offset"] as? Int, 700, "\(infoReply)")
        events += try second.request(["op": "feed", "stream": "resumed", "text": String(text[cut...])]).events
        assertEventsMatchEval(events, reference, stream: "resumed")
    }

    func testFeed_afterBadRequests_connectionStaysUsable() throws {
        let daemon = try Daemon.start(self)
        let client = try daemon.connect()
        try client.send(line: "{this is not json")
        XCTAssertEqual(Protocol.errorCode(try client.readObject()), "bad_json")
        try client.send(["op": "teleport", "id": 7])
        let unknown = try client.readObject()
        XCTAssertEqual(Protocol.errorCode(unknown), "unknown_op")
        XCTAssertEqual(unknown["id"] as? Int, 7, "errors echo the request's id")
        try client.send(["op": "feed", "stream": "s", "text": "abc", "k": 100000])
        XCTAssertEqual(Protocol.errorCode(try client.readObject()), "bad_value")
        try client.send(["op": "info", "stream": "never-made"])
        XCTAssertEqual(Protocol.errorCode(try client.readObject()), "unknown_stream")
        try client.send(bytes: [0xFF, 0xFE, 0x7B, 0x0A])  // not UTF-8
        XCTAssertEqual(Protocol.errorCode(try client.readObject()), "bad_json")
        let (events, reply) = try client.request(["op": "feed", "stream": "s", "text": "To be"])
        XCTAssertEqual(events.count, 5)
        XCTAssertEqual(reply["done"] as? Bool, true)
    }
}

/// Per-client results filled in from concurrent threads.
final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<[[String: Any]], Error>?]
    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ result: Result<[[String: Any]], Error>) { lock.withLock { results[index] = result } }
    func get(_ index: Int) -> Result<[[String: Any]], Error>? { lock.withLock { results[index] } }
}
