import Foundation
import RecurTestSupport
import XCTest

/// The real daemon on a real socket: it becomes ready, answers, and stops gracefully on a signal.
final class LifecycleTests: XCTestCase {
    func testStart_withSocket_acceptsConnectionsAndDescribesTheModel() throws {
        let daemon = try Daemon.start(self)
        let client = try daemon.connect()
        let (_, reply) = try client.request(["op": "model"])
        XCTAssertEqual(reply["cell"] as? String, "lstm")
        XCTAssertEqual(reply["vocab_size"] as? Int, 65)
        XCTAssertEqual(reply["tokenizer"] as? String, "char")
        let (_, stats) = try client.request(["op": "stats"])
        XCTAssertNotNil(stats["uptime"], "stats: \(stats)")
    }

    func testSigterm_withClientConnected_exitsZeroAndRemovesTheSocket() throws {
        let daemon = try Daemon.start(self)
        let client = try daemon.connect()
        let (events, _) = try client.request(["op": "feed", "stream": "s", "text": "To be, or not to be"])
        XCTAssertEqual(events.count, 19)
        let result = try daemon.stop(signal: SIGTERM)
        XCTAssertFalse(result.signalled, "recurd died of signal \(result.status); stderr: \(result.stderr)")
        XCTAssertEqual(result.status, 0, "stderr: \(result.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.socketPath), "the socket file is removed on shutdown")
        XCTAssertNil(try client.readLine(timeout: 5), "the daemon closes open connections on shutdown")
        for crash in ["Fatal error", "Backtrac"] { XCTAssertFalse(result.stderr.contains(crash), result.stderr) }
    }

    func testSigint_whenIdle_exitsZero() throws {
        let daemon = try Daemon.start(self)
        let result = try daemon.stop(signal: SIGINT)
        XCTAssertFalse(result.signalled, "recurd died of signal \(result.status); stderr: \(result.stderr)")
        XCTAssertEqual(result.status, 0, "stderr: \(result.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.socketPath))
    }

    func testStart_overStaleSocketFile_replacesIt() throws {
        let first = try Daemon.start(self)
        // SIGKILL leaves the socket file behind, as a crash or power cut would.
        first.child.signal(SIGKILL)
        _ = try first.child.wait()
        XCTAssertTrue(FileManager.default.fileExists(atPath: first.socketPath))
        let second = try Daemon.start(self, in: first.directory)
        let (_, reply) = try second.connect().request(["op": "stats"])
        XCTAssertNotNil(reply["streams"], "\(reply)")
    }

    func testStart_whileAnotherDaemonListens_refusesWithOneLine() throws {
        let first = try Daemon.start(self)
        let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--socket", first.socketPath],
                                   in: first.directory)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.signalled)
        XCTAssertTrue(result.stderr.contains("recurd: error: "), "stderr: \(result.stderr)")
        // The first daemon is undisturbed.
        let (_, reply) = try first.connect().request(["op": "stats"])
        XCTAssertNotNil(reply["streams"], "\(reply)")
    }
}
