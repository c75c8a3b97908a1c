import RecurCore
import RecurEngine
@testable import RecurServer
import RecurTestSupport
import XCTest

/// Connections and streams over time: limits, private streams, resuming, notices, shutdown.
final class SocketConnectionTests: XCTestCase {
    var harness: ServerHarness?

    override func tearDown() {
        if let harness { XCTAssertNil(harness.stop(), "the server did not shut down cleanly") }
        harness = nil
    }

    private func start(_ configure: (inout RecurdConfiguration) -> Void = { _ in }) throws -> ServerHarness {
        let started = try ServerHarness(configure: configure)
        harness = started
        return started
    }

    func testConnectionBeyondTheLimit_getsABusyErrorLineAndIsClosed() throws {
        let server = try start { $0.maxConnections = 2 }
        let a = try server.connect()
        var b: SocketClient? = try server.connect()
        _ = try a.request(#"{"op":"stats"}"#)
        _ = try b!.request(#"{"op":"stats"}"#)
        let c = try server.connect()
        let refusal = try c.readLine()
        XCTAssertEqual(refusal, #"{"error":{"code":"busy","message":"connection limit of 2 reached"}}"#)
        XCTAssertNil(try c.readLine(), "the refused connection stayed open")
        // The admitted ones are unaffected, and a slot frees when one closes.
        XCTAssertEqual(try a.request(#"{"op":"model","id":1}"#)["id"], .number("1"))
        b = nil
        try eventually("one open connection", { server.server.openConnections }, until: { $0 == 1 })
        let d = try server.connect()
        XCTAssertEqual(try d.request(#"{"op":"model","id":2}"#)["id"], .number("2"))
    }

    func testClosingAConnection_endsItsPrivateStreamButKeepsNamedOnes() throws {
        let server = try start()
        var client: SocketClient? = try server.connect()
        let (_, reply) = try client!.feed("abc")
        let privateName = try XCTUnwrap(reply["stream"]?.stringValue)
        _ = try client!.feed("def", stream: "kept")
        let engine = server.engine
        XCTAssertEqual(try blocking { await engine.list().map(\.stream) }.sorted(), ["kept", privateName].sorted())
        client = nil  // closes the socket
        // The private stream ends with its connection.
        try eventually("only 'kept' left", { try blocking { await engine.list().map(\.stream) } }, until: { $0 == ["kept"] })
    }

    func testNamedStream_resumedFromAnotherConnection_continuesItsOffsetAndState() throws {
        let server = try start()
        let text = "resume me, then continue"
        let split = 9
        var first: SocketClient? = try server.connect()
        let (early, _) = try first!.feed(String(text.prefix(split)), stream: "shared")
        first = nil
        let second = try server.connect()
        let (late, reply) = try second.feed(String(text.dropFirst(split)), stream: "shared")
        XCTAssertEqual(reply["offset"]?.intValue, text.count)
        let reference = TestModels.reference(text, model: TestModels.charLSTM)
        let got = (early + late).map { $0["logprob"]?.doubleValue.map(Float.init) }
        XCTAssertEqual(got, reference.map(\.logprob))
        XCTAssertEqual((early + late).map { $0["offset"]?.intValue }, Array(1...text.count))
    }

    func testResetOrEndByAnotherClient_sendsANoticeToTheStreamsOtherUsers() throws {
        let server = try start()
        let watcher = try server.connect()
        let actor = try server.connect()
        _ = try watcher.feed("ab", stream: "common")
        _ = try actor.feed("cd", stream: "common")
        XCTAssertEqual(try actor.request(#"{"op":"reset","stream":"common"}"#)["done"], .bool(true))
        let reset = try watcher.readJSON()
        XCTAssertEqual(reset["notice"], .string("reset"), reset.rendered)
        XCTAssertEqual(reset["stream"], .string("common"))
        XCTAssertNotNil(reset["message"]?.stringValue)
        XCTAssertEqual(try actor.request(#"{"op":"end","stream":"common"}"#)["done"], .bool(true))
        let ended = try watcher.readJSON()
        XCTAssertEqual(ended["notice"], .string("ended"), ended.rendered)
        // The actor itself is not told about its own doing.
        XCTAssertEqual(try actor.request(#"{"op":"model","id":"next"}"#)["id"], .string("next"))
    }

    func testIdleStream_expiresWithANoticeToItsClient() throws {
        let server = try start { $0.engine.idleTimeout = 0.3 }
        let client = try server.connect()
        _ = try client.feed("abc", stream: "sleepy")
        let notice = try client.readJSON(timeout: 10)
        XCTAssertEqual(notice["notice"], .string("expired"), notice.rendered)
        XCTAssertEqual(notice["stream"], .string("sleepy"))
        XCTAssertEqual(try client.request(#"{"op":"info","stream":"sleepy"}"#)["error"]?["code"], .string("unknown_stream"))
    }

    func testResidentBound_evictsTheLeastRecentlyUsedStreamWithANotice() throws {
        let server = try start { $0.engine.maxResidentStreams = 2 }
        let client = try server.connect()
        _ = try client.feed("a", stream: "one")
        _ = try client.feed("b", stream: "two")
        try client.send(#"{"op":"feed","stream":"three","text":"c"}"#)
        // The notice may come before or after the feed's reply.
        var lines = try client.readUntil { $0["done"] != nil }
        if !lines.contains(where: { $0["notice"] != nil }) { lines.append(try client.readJSON()) }
        let notice = try XCTUnwrap(lines.first { $0["notice"] != nil }, "no eviction notice in \(lines.map(\.rendered))")
        XCTAssertEqual(notice["notice"], .string("evicted"))
        XCTAssertEqual(notice["stream"], .string("one"))
    }

    func testRequestsBeforeEndOfInput_areAllAnsweredAfterTheClientHalfCloses() throws {
        let server = try start()
        let client = try server.connect()
        var batch = ""
        for i in 0..<20 { batch += #"{"op":"feed","stream":"h","text":"abcdefghij","id":\#(i)}"# + "\n" }
        try client.send(bytes: Array(batch.utf8))
        client.shutdownWrite()
        var dones = 0
        var events = 0
        while let line = try client.readLine() {
            let value = try JSONValue.parse(Array(line.utf8))
            if value["done"] != nil { dones += 1 } else { events += 1 }
        }
        XCTAssertEqual(dones, 20)
        XCTAssertEqual(events, 200)
    }

    func testGracefulShutdown_finishesTheRequestInFlightThenClosesAndRemovesTheSocket() throws {
        let server = try start()
        let client = try server.connect()
        _ = try client.feed("warm", stream: "s")
        let text = String(repeating: "abcdefghij", count: 300)
        try client.send(#"{"op":"feed","stream":"s","text":"\#(text)","id":"last"}"#)
        // Wait until the feed is being answered, then ask the server to stop.
        _ = try client.readJSON()
        // Stop on another thread: the server waits for this client to read its replies.
        let stopped = StopOutcome()
        let done = DispatchSemaphore(value: 0)
        let stopper = UncheckedBox(server)
        DispatchQueue.global().async {
            stopped.error = stopper.value.stop()
            done.signal()
        }
        var lines = 1
        var sawDone = false
        while let line = try client.readLine() {
            lines += 1
            if line.contains("\"done\":true") { sawDone = true }
        }
        done.wait()
        XCTAssertNil(stopped.error)
        XCTAssertTrue(sawDone, "the in-flight feed was cut off after \(lines) lines")
        XCTAssertEqual(lines, text.count + 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: server.socketPath))
        harness = nil
    }

    func testListeningDescriptorHandedOver_isServedLikeABoundPath() throws {
        let server = try ServerHarness(handOver: true)
        harness = server
        let client = try server.connect()
        let (events, reply) = try client.feed("handed over", stream: "fd")
        XCTAssertEqual(events.count, 11)
        XCTAssertEqual(reply["offset"]?.intValue, 11)
    }

    func testStaleSocketFile_isReplacedButALiveDaemonsSocketIsNot() throws {
        let server = try start()
        XCTAssertThrowsError(try SocketPath.prepare(server.socketPath)) { error in
            XCTAssertTrue("\(error)".contains("already listening"), "\(error)")
        }
        let directory = try makeShortTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plain = directory.appendingPathComponent("not-a-socket").path
        _ = FileManager.default.createFile(atPath: plain, contents: Data("x".utf8))
        XCTAssertThrowsError(try SocketPath.prepare(plain))
        // A socket file whose daemon died: nobody accepts, so it is removed.
        let stale = directory.appendingPathComponent("stale.sock").path
        close(try ServerHarness.listeningSocket(at: stale))
        XCTAssertTrue(FileManager.default.fileExists(atPath: stale))
        XCTAssertNoThrow(try SocketPath.prepare(stale))
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
    }
}

/// The result of a stop run on another thread (the semaphore orders the accesses).
private final class StopOutcome: @unchecked Sendable {
    var error: Error?
}

/// Hands a non-Sendable test object to another thread that alone uses it meanwhile.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
