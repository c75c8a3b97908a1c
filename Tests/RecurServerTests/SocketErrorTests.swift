import RecurCore
@testable import RecurServer
import RecurTestSupport
import XCTest

/// Bad input over a real socket: each error code, and the connection stays usable after it.
final class SocketErrorTests: XCTestCase {
    var harness: ServerHarness!

    override func setUpWithError() throws {
        harness = try ServerHarness { configuration in
            configuration.maxLineLength = 1024
        }
    }

    override func tearDown() {
        if let harness {  // nil when setUp failed: that failure is the report
            XCTAssertNil(harness.stop(), "the server did not shut down cleanly")
        }
        harness = nil
    }

    /// Asserts that the connection still serves a request.
    private func assertUsable(_ client: SocketClient, file: StaticString = #filePath, line: UInt = #line) throws {
        let reply = try client.request(#"{"op":"model","id":"alive"}"#, file: file, line: line)
        XCTAssertEqual(reply["id"], .string("alive"), reply.rendered, file: file, line: line)
    }

    private func code(_ reply: JSONValue) -> String? {
        reply["error"]?["code"]?.stringValue
    }

    func testEachErrorCode_isSentAsAnErrorObjectAndTheConnectionStaysUsable() throws {
        let client = try harness.connect()
        let cases: [(String, String)] = [
            ("{\"op\":", "bad_json"),
            (#"{"op":"dance","id":1}"#, "unknown_op"),
            (#"{"op":"feed","id":2}"#, "missing_field"),
            (#"{"op":"feed","text":"a","k":1000}"#, "bad_value"),
            (#"{"op":"predict","stream":"ghost","n":3}"#, "unknown_stream"),
            (#"{"op":"feed","stream":"s","text":"ünïcödé ∑"}"#, "bad_value"),
        ]
        for (request, expected) in cases {
            let reply = try client.request(request)
            XCTAssertEqual(code(reply), expected, "\(request) → \(reply.rendered)")
            XCTAssertNotNil(reply["error"]?["message"]?.stringValue, reply.rendered)
            try assertUsable(client)
        }
    }

    func testFeed_whenTextHasACharacterOutsideTheVocabulary_namesItAndChangesNothing() throws {
        let client = try harness.connect()
        _ = try client.feed("abc", stream: "s")
        let reply = try client.request(#"{"op":"feed","stream":"s","text":"ab∑","id":9}"#)
        XCTAssertEqual(code(reply), "bad_value")
        XCTAssertEqual(reply["id"], .number("9"))
        let message = reply["error"]?["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("U+2211"), message)
        XCTAssertEqual(try client.request(#"{"op":"info","stream":"s"}"#)["offset"]?.intValue, 3)
    }

    func testTooLongLine_givesTooLongOnceSkipsTheRestAndServesTheNextLine() throws {
        let client = try harness.connect()
        let long = #"{"op":"feed","stream":"s","text":""# + String(repeating: "a", count: 5000) + #""}"#
        // Sent in pieces so the daemon sees the line grow past the limit before its end.
        let bytes = Array((long + "\n").utf8)
        for start in stride(from: 0, to: bytes.count, by: 700) {
            try client.send(bytes: Array(bytes[start..<min(start + 700, bytes.count)]))
            usleep(2_000)  // pacing, not a wait: the pieces arrive as separate reads
        }
        let reply = try client.readJSON()
        XCTAssertEqual(code(reply), "too_long", reply.rendered)
        XCTAssertTrue(reply["error"]?["message"]?.stringValue?.contains("1024") ?? false, reply.rendered)
        try assertUsable(client)
        XCTAssertEqual(code(try client.request(#"{"op":"info","stream":"s"}"#)), "unknown_stream",
                       "part of the over-long line was executed")
    }

    func testInvalidUTF8_givesBadJSONSayingSoAndTheConnectionStaysUsable() throws {
        let client = try harness.connect()
        try client.send(bytes: Array(#"{"op":"feed","text":"a"#.utf8) + [0xFF, 0xFE] + Array("\"}\n".utf8))
        let reply = try client.readJSON()
        XCTAssertEqual(code(reply), "bad_json")
        XCTAssertTrue(reply["error"]?["message"]?.stringValue?.contains("UTF-8") ?? false, reply.rendered)
        try assertUsable(client)
    }

    func testCRLFAndBlankLines_areTolerated() throws {
        let client = try harness.connect()
        try client.send(bytes: Array("\r\n\n  \n{\"op\":\"model\",\"id\":1}\r\n".utf8))
        XCTAssertEqual(try client.readJSON()["id"], .number("1"))
    }

    func testBinaryGarbage_neverCrashesTheDaemonNorDisturbsOtherClients() throws {
        let bystander = try harness.connect()
        _ = try bystander.feed("steady", stream: "bystander")
        var rng = SeededGenerator(seed: 99)
        for round in 0..<20 {
            let vandal = try harness.connect()
            var garbage = (0..<Int(rng.next() % 3000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if round % 2 == 0 { garbage += Array("\n{\"op\":\"stats\"}\n".utf8) }
            try vandal.send(bytes: garbage)
            if round % 3 == 0 { vandal.shutdownWrite() }
            // Whatever comes back must be JSON lines.
            while let line = try? vandal.readLine(timeout: 0.3) {
                XCTAssertNoThrow(try JSONValue.parse(Array(line.utf8)), line)
                if line.contains("\"op\":\"stats\"") { break }
            }
        }
        let (events, reply) = try bystander.feed("!", stream: "bystander")
        XCTAssertEqual(events.first?["offset"]?.intValue, 7)
        XCTAssertEqual(reply["done"], .bool(true))
    }
}
