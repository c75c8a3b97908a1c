import Foundation
import RecurTestSupport
import XCTest

/// Bad cluster command lines end recurd (and recur cluster status) with one clear line naming
/// the flag, before anything is served or any database is touched.
final class ClusterFlagTests: XCTestCase {
    private let url = "postgres://recur@/recur?host=/nonexistent&port=5432"

    func testRecurd_badClusterCombinations_nameTheFlag() throws {
        let directory = try makeWorkDirectory(self)
        let socket = directory.appendingPathComponent("s").path
        let base = ["--model", Repository.shakespeareModel.path, "--socket", socket]
        let cases: [([String], [String])] = [
            (["--cluster", "mysql://x/y"], ["--cluster", "PostgreSQL URL"]),
            (["--cluster", "postgres://u@h:5432/"], ["names no database"]),
            (["--cluster", url, "--state-dir", directory.path], ["--cluster", "--state-dir"]),
            (["--cluster", url, "--durability", "off"], ["--durability off"]),
            (["--cluster", url, "--lease-ttl", "0.1"], ["--lease-ttl"]),
            (["--cluster", url, "--key-groups", "0"], ["--key-groups"]),
            (["--cluster", url, "--peer-listen", "127.0.0.1:7401"], ["--peer-cert", "--peer-key", "--peer-ca", "never in the clear"]),
            (["--cluster", url, "--peer-listen", "nowhere"], ["--peer-listen", "HOST:PORT"]),
            (["--cluster", url, "--peer-ca", "ca.pem"], ["--peer-ca", "--peer-listen"]),
            (["--node", "a"], ["--node", "--cluster"]),
            (["--peer-listen", "127.0.0.1:7401"], ["--peer-listen", "--cluster"]),
        ]
        for (extra, mentions) in cases {
            let result = try runRecurd(base + extra, in: directory)
            assertCleanError(result, mentions: mentions)
        }
    }

    func testRecurd_unreachableDatabase_failsWithOneLineNamingIt() throws {
        let directory = try makeWorkDirectory(self)
        let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--socket", directory.appendingPathComponent("s").path,
                                    "--cluster", url], in: directory)
        // The model loads first (an info line), then the store: one error line, and the exit.
        XCTAssertFalse(result.signalled, result.stderr)
        XCTAssertNotEqual(result.status, 0, result.stderr)
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("recurd: error: ") }
        XCTAssertEqual(errors.count, 1, result.stderr)
        for fragment in ["cannot connect to the cluster's PostgreSQL", "/nonexistent", "No such file"] {
            XCTAssertTrue(errors.first?.contains(fragment) == true, "\(fragment): \(result.stderr)")
        }
    }

    func testRecurClusterStatus_badOrUnreachableURL_saysSo() throws {
        let directory = try makeWorkDirectory(self)
        let bad = try ChildProcess(Executables.recur, ["cluster", "status", "--cluster", "http://x"], in: directory, stdin: Data()).wait()
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("--cluster takes a PostgreSQL URL"), bad.stderr)
        let unreachable = try ChildProcess(Executables.recur, ["cluster", "status", "--cluster", url], in: directory, stdin: Data()).wait()
        XCTAssertEqual(unreachable.status, 1)
        XCTAssertTrue(unreachable.stderr.contains("cannot connect to the cluster's PostgreSQL"), unreachable.stderr)
    }
}
