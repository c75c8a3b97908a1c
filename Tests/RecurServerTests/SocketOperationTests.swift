import RecurCore
@testable import RecurServer
import RecurTestSupport
import XCTest

/// Every op over a real Unix socket, with the reply shapes of docs/PROTOCOL.md.
final class SocketOperationTests: XCTestCase {
    var harness: ServerHarness!

    override func setUpWithError() throws {
        harness = try ServerHarness()
    }

    override func tearDown() {
        if let harness {  // nil when setUp failed: that failure is the report
            XCTAssertNil(harness.stop(), "the server did not shut down cleanly")
        }
        harness = nil
    }

    func testFeed_emitsOneEventPerTokenThenDone_matchingTheEvaluator() throws {
        let client = try harness.connect()
        let text = "Hello, world é€😀"
        let (events, reply) = try client.feed(text, stream: "greeting", k: 3)
        let reference = TestModels.reference(text, model: TestModels.charLSTM)
        XCTAssertEqual(events.count, reference.count)
        for (i, event) in events.enumerated() {
            XCTAssertEqual(event["stream"], .string("greeting"))
            XCTAssertEqual(event["offset"]?.intValue, i + 1)
            XCTAssertEqual(event["token"]?.stringValue, TestModels.charLSTM.vocabulary.tokens[Int(reference[i].token)])
            if let expected = reference[i].logprob {
                XCTAssertEqual(event["logprob"]?.doubleValue.map(Float.init), expected, "offset \(i + 1)")
            } else {
                XCTAssertEqual(event["logprob"], .null)
            }
            guard case .array(let next)? = event["next"] else { return XCTFail("no next list in \(event.rendered)") }
            XCTAssertEqual(next.count, 3)
            let ps = next.compactMap { $0["p"]?.doubleValue }
            XCTAssertEqual(ps, ps.sorted(by: >))
        }
        XCTAssertEqual(reply.rendered, #"{"op":"feed","stream":"greeting","done":true,"tokens":\#(reference.count),"offset":\#(reference.count)}"#)
    }

    func testInfo_reportsTheConnectingUserAsOwner_fromTheSocketCredentials() throws {
        let client = try harness.connect()
        _ = try client.feed("ab", stream: "mine")
        XCTAssertEqual(try client.request(#"{"op":"info","stream":"mine"}"#)["owner"]?.intValue, Int(geteuid()))
    }

    func testFeed_withoutK_usesTheDaemonDefaultOfFive() throws {
        let client = try harness.connect()
        let (events, _) = try client.feed("ab", stream: "s")
        guard case .array(let next)? = events.first?["next"] else { return XCTFail("no next list") }
        XCTAssertEqual(next.count, 5)
    }

    func testEveryReply_echoesTheRequestID_whateverItsType() throws {
        let client = try harness.connect()
        for id in [#""abc""#, "42", "12345678901234567890", "1.50", "true", "null"] {
            try client.send(#"{"op":"feed","stream":"ids","text":"ab","id":\#(id)}"#)
            let lines = try client.readUntil { $0["done"] != nil }
            XCTAssertEqual(lines.count, 3)
            for line in lines {
                XCTAssertTrue(line.rendered.hasPrefix("{\"id\":\(id),"), line.rendered)
            }
            let error = try client.request(#"{"op":"info","stream":"nope","id":\#(id)}"#)
            XCTAssertTrue(error.rendered.hasSuffix(",\"id\":\(id)}"), error.rendered)
        }
    }

    func testPredict_continuesWithoutChangingTheStream() throws {
        let client = try harness.connect()
        _ = try client.feed("the cat ", stream: "p")
        let first = try client.request(#"{"op":"predict","stream":"p","n":12,"id":1}"#)
        let second = try client.request(#"{"op":"predict","stream":"p","n":12}"#)
        XCTAssertEqual(first["op"], .string("predict"))
        XCTAssertEqual(first["id"], .number("1"))
        guard case .array(let tokens)? = first["tokens"] else { return XCTFail(first.rendered) }
        XCTAssertEqual(tokens.count, 12)
        XCTAssertEqual(first["text"]?.stringValue?.unicodeScalars.count, 12)
        XCTAssertEqual(first["tokens"], second["tokens"], "greedy prediction changed the stream")
        let info = try client.request(#"{"op":"info","stream":"p"}"#)
        XCTAssertEqual(info["offset"]?.intValue, 8)
        let sampled = try client.request(#"{"op":"predict","stream":"p","n":5,"temperature":1.0,"k":3,"seed":7}"#)
        let again = try client.request(#"{"op":"predict","stream":"p","n":5,"temperature":1.0,"k":3,"seed":7}"#)
        XCTAssertEqual(sampled["tokens"], again["tokens"], "the same seed sampled differently")
    }

    func testResetForkEndInfoList_manageStreamsByName() throws {
        let client = try harness.connect()
        _ = try client.feed("abc", stream: "a")
        XCTAssertEqual(try client.request(#"{"op":"fork","stream":"a","into":"b"}"#).rendered,
                       #"{"op":"fork","stream":"a","into":"b","done":true}"#)
        let forked = try client.request(#"{"op":"info","stream":"b"}"#)
        XCTAssertEqual(forked["offset"]?.intValue, 3)
        XCTAssertEqual(forked["scored_tokens"]?.intValue, 2)
        XCTAssertNotNil(forked["mean_loss"]?.doubleValue)
        XCTAssertTrue(forked["created"]?.stringValue?.hasSuffix("Z") ?? false, forked.rendered)
        XCTAssertNotNil(forked["last_activity"]?.stringValue)
        XCTAssertEqual(forked["pending_bytes"]?.intValue, 0)

        // The fork continues exactly where the original was.
        let (fromA, _) = try client.feed("d", stream: "a")
        let (fromB, _) = try client.feed("d", stream: "b")
        XCTAssertEqual(fromA.first?["logprob"], fromB.first?["logprob"])
        XCTAssertEqual(fromA.first?["offset"]?.intValue, 4)

        XCTAssertEqual(try client.request(#"{"op":"reset","stream":"a"}"#).rendered, #"{"op":"reset","stream":"a","done":true}"#)
        XCTAssertEqual(try client.request(#"{"op":"info","stream":"a"}"#)["offset"]?.intValue, 0)
        let list = try client.request(#"{"op":"list"}"#)
        guard case .array(let streams)? = list["streams"] else { return XCTFail(list.rendered) }
        XCTAssertEqual(Set(streams.compactMap { $0["stream"]?.stringValue }), ["a", "b"])
        XCTAssertEqual(try client.request(#"{"op":"end","stream":"a"}"#).rendered, #"{"op":"end","stream":"a","done":true}"#)
        XCTAssertEqual(try client.request(#"{"op":"info","stream":"a"}"#)["error"]?["code"], .string("unknown_stream"))
        XCTAssertEqual(try client.request(#"{"op":"fork","stream":"b","into":"b"}"#)["error"]?["code"], .string("stream_exists"))
    }

    func testStatsAndModel_describeTheEngineAndTheModel() throws {
        let client = try harness.connect()
        _ = try client.feed("abcd", stream: "s")
        let stats = try client.request(#"{"op":"stats","id":"s"}"#)
        XCTAssertEqual(stats["op"], .string("stats"))
        XCTAssertGreaterThanOrEqual(stats["tokens"]?.intValue ?? 0, 4)
        XCTAssertGreaterThanOrEqual(stats["streams"]?.intValue ?? 0, 1)
        XCTAssertEqual(stats["connections"]?.intValue, 1)
        for key in ["tokens_per_second", "steps", "mean_batch", "uptime"] {
            XCTAssertNotNil(stats[key]?.doubleValue, "stats lacks \(key): \(stats.rendered)")
        }
        let model = try client.request(#"{"op":"model"}"#)
        let m = TestModels.charLSTM
        XCTAssertEqual(model["cell"], .string("lstm"))
        XCTAssertEqual(model["layers"]?.intValue, m.config.layers)
        XCTAssertEqual(model["hidden"]?.intValue, m.config.hiddenSize)
        XCTAssertEqual(model["embedding"]?.intValue, m.config.embeddingSize)
        XCTAssertEqual(model["vocab_size"]?.intValue, m.config.vocabularySize)
        XCTAssertEqual(model["tokenizer"], .string("char"))
        XCTAssertEqual(model["parameters"]?.intValue, m.parameters.count)
        XCTAssertEqual(model["provenance"]?["seed"], .string("11"))
    }

    func testFeed_withoutStream_usesAPrivateStreamThatOtherConnectionsCannotSee() throws {
        let a = try harness.connect()
        let b = try harness.connect()
        let (events, reply) = try a.feed("xyz")
        guard let name = reply["stream"]?.stringValue else { return XCTFail(reply.rendered) }
        XCTAssertTrue(name.hasPrefix("~"), name)
        XCTAssertEqual(events.last?["stream"]?.stringValue, name)
        XCTAssertEqual(try a.request(#"{"op":"info"}"#)["offset"]?.intValue, 3)
        let seenByA = try a.request(#"{"op":"list"}"#).rendered
        let seenByB = try b.request(#"{"op":"list"}"#).rendered
        XCTAssertTrue(seenByA.contains(name), seenByA)
        XCTAssertFalse(seenByB.contains(name), seenByB)
        XCTAssertEqual(try b.request(#"{"op":"info","stream":"\#(name)"}"#)["error"]?["code"], .string("bad_value"))
    }

    func testFeed_acrossRequests_continuesTheStreamsOffsets() throws {
        let client = try harness.connect()
        let (first, _) = try client.feed("a", stream: "split")
        XCTAssertEqual(first.count, 1)
        let (events, reply) = try client.feed("😀b", stream: "split")
        XCTAssertEqual(events.map { $0["token"]?.stringValue }, ["😀", "b"])
        XCTAssertEqual(events.map { $0["offset"]?.intValue }, [2, 3])
        XCTAssertEqual(reply["offset"]?.intValue, 3)
    }

    func testFeed_withAWordModel_holdsTheLastWordUntilFlush() throws {
        harness.stop()
        harness = try ServerHarness(model: TestModels.wordRNN)
        let client = try harness.connect()
        let (events, reply) = try client.feed("the cat sa", stream: "w")
        XCTAssertEqual(events.map { $0["token"]?.stringValue }, ["the", " ", "cat", " "])
        XCTAssertEqual(reply["offset"]?.intValue, 4)
        XCTAssertEqual(try client.request(#"{"op":"info","stream":"w"}"#)["pending_bytes"]?.intValue, 2)
        let (rest, done) = try client.feed("t", stream: "w", flush: true)
        XCTAssertEqual(rest.map { $0["token"]?.stringValue }, ["sat"])
        XCTAssertEqual(done["tokens"]?.intValue, 1)
        let (nothing, empty) = try client.feed("", stream: "w")
        XCTAssertEqual(nothing.count, 0)
        XCTAssertEqual(empty.rendered, #"{"op":"feed","stream":"w","done":true,"tokens":0,"offset":5}"#)
    }

    func testFeed_withAByteModel_showsTextBytesAsText_andOtherBytesAsHex() throws {
        harness.stop()
        harness = try ServerHarness(model: TestModels.byteGRU)
        let client = try harness.connect()
        let (events, _) = try client.feed("a\té\n\u{1}", stream: "bytes", k: 1)
        XCTAssertEqual(events.map { $0["token"]?.stringValue }, ["a", "\t", "\\xC3", "\\xA9", "\n", "\\x01"])
        XCTAssertEqual(events.map { $0["tid"]?.intValue }, [97, 9, 0xC3, 0xA9, 10, 1])
    }
}
