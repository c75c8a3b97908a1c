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
        let results = feedConcurrently(daemon, text: text, clients: clients, seed: seed, chunkLengths: (7, 200), fields: ["k": 3])
        for (index, result) in results.enumerated() {
            switch result {
            case .success(let events):
                assertEventsMatchEval(events, reference, stream: "c\(index)")
                XCTAssertEqual((events.last?["next"] as? [Any])?.count, 3, "k = 3 predictions per event")
            case .failure(let error):
                XCTFail("client \(index) (seed \(seed)): \(error)")
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

