import Foundation
import XCTest
import RecurTestSupport

/// What the `stats` counters count after a restart with `--state-dir`.
final class StatsCountTests: XCTestCase {
    func testStats_afterACrashAndRestore_countsReplayedTokensApartFromFedOnes() throws {
        let directory = try makeWorkDirectory(self)
        let state = directory.appendingPathComponent("state").path
        let arguments = ["--state-dir", state, "--checkpoint-interval", "100000"]
        let first = try Daemon.start(self, arguments: arguments, in: directory)
        let fed = try first.connect().request(["op": "feed", "stream": "s", "text": "to be or not"])
        XCTAssertEqual(fed.events.count, 12)
        // kill -9: no checkpoint at stop, so the restore replays the 12 logged tokens.
        try first.stop(signal: SIGKILL)
        let restarted = try Daemon.start(self, arguments: arguments, in: directory)
        let client = try restarted.connect()
        XCTAssertEqual(try client.request(["op": "info", "stream": "s"]).reply["offset"] as? Int, 12)
        let more = try client.request(["op": "feed", "stream": "s", "text": " to"])
        XCTAssertEqual(more.events.map { $0["offset"] as? Int }, [13, 14, 15])
        let stats = try client.request(["op": "stats"]).reply
        XCTAssertEqual(stats["tokens"] as? Int, 3, "only the tokens fed since the restart: \(stats)")
        XCTAssertEqual(stats["replayed_tokens"] as? Int, 12, "\(stats)")
        XCTAssertEqual(stats["restored"] as? Int, 1, "\(stats)")
    }
}
