import Foundation
import RecurTestSupport
import XCTest

/// recurd with its `--state-dir` on a filesystem that is really full (a small tmpfs filled to
/// ENOSPC): no stream is lost and no acknowledged feed is taken back. A stream that cannot be
/// stored stays in memory over `--max-streams` (counted in `stats`, logged), its results are
/// still exactly `recur eval`'s, and once space is freed the daemon moves it to the store on its
/// own. Under `--durability strict` and `batched` a feed whose tokens cannot be logged fails
/// with a clear error and is not acknowledged.
final class FullDiskTests: XCTestCase {
    /// A 4 MiB tmpfs (mode 700) mounted in the test's work directory, unmounted at teardown;
    /// skips when this process may not mount (not root, or no mount namespace of its own).
    private func smallFilesystem(in directory: URL) throws -> URL {
        let mountPoint = directory.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        let mount = try ChildProcess(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=4m,mode=700", "tmpfs", mountPoint.path],
                                     in: directory, stdin: Data()).wait()
        guard mount.status == 0 else {
            throw XCTSkip("a full disk needs a small tmpfs, and mounting one was refused (uid \(getuid())): \(mount.stderr)")
        }
        addTeardownBlock {
            // Lazily: the daemon, killed just before, may not have closed its files yet.
            _ = try? ChildProcess(URL(fileURLWithPath: "/bin/umount"), ["-l", mountPoint.path], in: directory, stdin: Data()).wait()
        }
        return mountPoint
    }

    /// Fills the filesystem holding `directory` with a file until writes fail with ENOSPC;
    /// returns the file (deleting it frees the space).
    private func fill(_ directory: URL) throws -> URL {
        let filler = directory.appendingPathComponent("filler")
        let fd = open(filler.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw TestFailure("cannot create \(filler.path): errno \(errno)") }
        defer { close(fd) }
        let block = [UInt8](repeating: 0xA5, count: 4096)
        while true {
            let written = block.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                guard errno == ENOSPC else { throw TestFailure("filling \(filler.path) failed with errno \(errno), not ENOSPC") }
                return filler
            }
        }
    }

    private func stats(_ daemon: Daemon) throws -> [String: Any] {
        try daemon.connect().request(["op": "stats"]).reply
    }

    func testFullDisk_durabilityOff_streamsStayResidentOverTheBound_thenMoveToTheStoreOnceSpaceIsFreed() throws {
        let directory = try makeWorkDirectory(self)
        let small = try smallFilesystem(in: directory)
        let state = small.appendingPathComponent("state").path
        let daemon = try Daemon.start(self, arguments: ["--state-dir", state, "--durability", "off", "--max-streams", "2",
                                                        "--idle-timeout", "0"], in: directory)
        let hamlet = try String(contentsOf: Repository.hamlet, encoding: .utf8)
        let filler = try fill(small)
        let client = try daemon.connect()
        // Each stream's text, fed in two halves with every other stream in between, so each is
        // evicted (and fails to be stored) between its two requests.
        let count = 8
        let texts = (0..<count).map { i in String(hamlet.dropFirst(i * 37).prefix(60 + i)) }
        var events: [[[String: Any]]] = Array(repeating: [], count: count)
        for half in 0..<2 {
            for i in 0..<count {
                let text = texts[i]
                let cut = text.index(text.startIndex, offsetBy: text.count / 2)
                let piece = half == 0 ? String(text[..<cut]) : String(text[cut...])
                let (pieceEvents, reply) = try client.request(["op": "feed", "stream": "s\(i)", "text": piece, "k": 2])
                XCTAssertEqual(reply["done"] as? Bool, true, "feed \(half) of s\(i) on a full disk: \(reply)")
                events[i] += pieceEvents
            }
        }
        // SQLite may still fit a few rows in pages it holds; most moves fail.
        let full = try stats(daemon)
        let over = full["over_bound"] as? Int ?? 0
        XCTAssertGreaterThanOrEqual(over, count / 2, "streams the full disk could not take stay in memory: \(full)")
        XCTAssertEqual(full["streams"] as? Int, 2 + over, "\(full)")
        XCTAssertGreaterThanOrEqual(full["store_failures"] as? Int ?? 0, over, "\(full)")
        try daemon.child.waitFor("a not_stored warning in recurd's log") {
            daemon.child.stderrText.contains("could not be moved to the state store")
        }
        for i in 0..<count {
            let info = try client.request(["op": "info", "stream": "s\(i)"]).reply
            XCTAssertEqual(info["offset"] as? Int, texts[i].unicodeScalars.count, "s\(i) on a full disk: \(info)")
            assertEventsMatchEval(events[i], try recurEvalPerToken(model: Repository.shakespeareModel, text: texts[i], in: directory),
                                  stream: "s\(i)")
        }

        // Space freed: with no new stream and no timeout, the daemon stores them on its own.
        try FileManager.default.removeItem(at: filler)
        let relieved = try eventually("the streams over the bound moved to the store", timeout: .seconds(60),
                                      { try stats(daemon) }, until: { ($0["over_bound"] as? Int) == 0 && ($0["streams"] as? Int) == 2 })
        // Every stream not resident is in the store; a resident one may be too (stored before the
        // disk filled, then restored: `stored_streams` counts it, docs/PROTOCOL.md).
        let stored = relieved["stored_streams"] as? Int ?? -1
        XCTAssertTrue((count - 2)...count ~= stored, "\(relieved)")
        // Each comes back from the store where it was and goes on exactly as recur eval does.
        for i in 0..<count {
            let more = " and more"
            let (moreEvents, reply) = try client.request(["op": "feed", "stream": "s\(i)", "text": more, "k": 2])
            XCTAssertEqual(reply["done"] as? Bool, true, "s\(i) after the store took it: \(reply)")
            assertEventsMatchEval(events[i] + moreEvents,
                                  try recurEvalPerToken(model: Repository.shakespeareModel, text: texts[i] + more, in: directory),
                                  stream: "s\(i)")
        }
        XCTAssertTrue(daemon.child.isRunning)
    }

    func testFullDisk_durabilityStrict_feedThatCannotBeLoggedFailsAndIsNotAcknowledged() throws {
        try assertUnloggableFeedFails(durability: "strict")
    }

    func testFullDisk_durabilityBatched_feedThatCannotBeLoggedFailsAndIsNotAcknowledged() throws {
        try assertUnloggableFeedFails(durability: "batched")
    }

    private func assertUnloggableFeedFails(durability: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let directory = try makeWorkDirectory(self)
        let small = try smallFilesystem(in: directory)
        let state = small.appendingPathComponent("state").path
        let arguments = ["--state-dir", state, "--durability", durability]
        let daemon = try Daemon.start(self, arguments: arguments, in: directory)
        let client = try daemon.connect()
        let first = "To be, or not"
        let firstEvents = try client.request(["op": "feed", "stream": "s", "text": first]).events
        XCTAssertEqual(firstEvents.count, first.count)
        let filler = try fill(small)
        // The log cannot take the tokens: an error, and no event acknowledges any of them.
        let refused = " to be, that is the question"
        let (refusedEvents, error) = try client.request(["op": "feed", "stream": "s", "text": refused])
        XCTAssertEqual(refusedEvents.count, 0, "no token of a feed that could not be logged is acknowledged: \(refusedEvents)")
        XCTAssertEqual(Protocol.errorCode(error), "internal", "a feed on a full disk under --durability \(durability) must fail: \(error)")
        let message = ((error["error"] as? [String: Any])?["message"] as? String) ?? ""
        XCTAssertTrue(message.contains("could not log") && message.contains("full"), "the error says why: \(error)")
        XCTAssertEqual(try client.request(["op": "info", "stream": "s"]).reply["offset"] as? Int, first.count,
                       "the stream stands where it was acknowledged")

        // Space freed: the same feed goes through and the stream continues as recur eval says.
        try FileManager.default.removeItem(at: filler)
        let (events, reply) = try client.request(["op": "feed", "stream": "s", "text": refused])
        XCTAssertEqual(reply["done"] as? Bool, true, "the feed once space is freed: \(reply)")
        assertEventsMatchEval(firstEvents + events,
                              try recurEvalPerToken(model: Repository.shakespeareModel, text: first + refused, in: directory),
                              stream: "s")
        // A restart on the same directory finds every acknowledged token, and none of the refused feed twice.
        try daemon.stop(signal: SIGKILL)
        let restarted = try Daemon.start(self, arguments: arguments, in: directory)
        let info = try restarted.connect().request(["op": "info", "stream": "s"]).reply
        XCTAssertEqual(info["offset"] as? Int, first.count + refused.count, "--durability \(durability), after kill -9 and a restart: \(info)")
    }
}
