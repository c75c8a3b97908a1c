import Foundation
import XCTest
import RecurTestSupport

/// How long a `recurd --stdin` stream lives, and what the end-of-input summary counts when
/// socket clients use the same daemon.
final class StdinLifetimeTests: XCTestCase {
    private let model = Repository.shakespeareModel

    /// `recurd --stdin --socket` with stdin held open, once the socket accepts connections.
    private func startStdinDaemon(_ arguments: [String]) throws -> (child: ChildProcess, socket: String, directory: URL) {
        let directory = try makeWorkDirectory(self)
        let socket = directory.appendingPathComponent("d.sock").path
        let child = try ChildProcess(Executables.recurd, ["--model", model.path, "--stdin", "--socket", socket] + arguments,
                                     in: directory, keepStdinOpen: true)
        addTeardownBlock { child.signal(SIGKILL) }
        try child.waitFor("the socket to accept connections") { (try? SocketClient(path: socket)) != nil }
        return (child, socket, directory)
    }

    private func streamNames(_ client: SocketClient) throws -> [String] {
        let listed = try client.request(["op": "list"]).reply
        return (listed["streams"] as? [[String: Any]] ?? []).compactMap { $0["stream"] as? String }
    }

    func testStdin_quietPipe_keepsItsStreamPastTheIdleTimeoutWhileSocketStreamsExpire() throws {
        let (child, socket, _) = try startStdinDaemon(["--idle-timeout", "1", "--format", "tsv"])
        try child.writeStdin(Data("to be\n".utf8))
        try child.waitFor("the first line's events") { child.stdoutLinesSoFar.count >= 6 }
        // A socket stream used after the stdin stream's last input: once it has expired, the
        // stdin stream has been idle longer and would have expired too.
        let client = try SocketClient(path: socket)
        _ = try client.request(["op": "feed", "stream": "probe", "text": "x"])
        var names = try streamNames(client)
        let deadline = Date().addingTimeInterval(30)
        while names.contains("probe") {
            if Date() > deadline { throw TestFailure("the socket stream did not expire within 30 s; streams: \(names)") }
            usleep(50_000)
            names = try streamNames(client)
        }
        XCTAssertTrue(names.contains("stdin"), "the quiet stdin stream is still there: \(names)")
        XCTAssertFalse(child.stderrText.contains("expired 'stdin'"), child.stderrText)
        try child.writeStdin(Data("or not\n".utf8))
        try child.waitFor("the second line's events") { child.stdoutLinesSoFar.count >= 13 }
        child.closeStdin()
        let result = try child.wait()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.map { Int($0.split(separator: "\t")[0]) }, Array(1...13), "the stream went on from its state")
        XCTAssertTrue(result.stderr.contains("recurd: 13 tokens (12 scored) in 1 stream"), result.stderr)
    }

    func testStdin_expireStdinStreams_letsTheIdleTimeoutRestartAQuietStream() throws {
        let directory = try makeWorkDirectory(self)
        let child = try ChildProcess(Executables.recurd, ["--model", model.path, "--stdin", "--idle-timeout", "1",
                                                          "--expire-stdin-streams", "--format", "tsv"],
                                     in: directory, keepStdinOpen: true)
        try child.writeStdin(Data("to be\n".utf8))
        try child.waitFor("the first line's events") { child.stdoutLinesSoFar.count >= 6 }
        try child.waitFor("the stdin stream to expire") { child.stderrText.contains("expired 'stdin'") }
        try child.writeStdin(Data("or\n".utf8))
        try child.waitFor("the second line's events") { child.stdoutLinesSoFar.count >= 9 }
        child.closeStdin()
        let result = try child.wait()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.map { Int($0.split(separator: "\t")[0]) }, [1, 2, 3, 4, 5, 6, 1, 2, 3],
                       "asked for, expiry restarts the stream from the zero state")
        XCTAssertTrue(result.stderr.contains("recurd: 9 tokens (7 scored) in 1 stream"), result.stderr)
    }

    func testStdin_expireStdinStreamsWithoutStdinOrTimeout_isAFlagError() throws {
        let directory = try makeWorkDirectory(self)
        let withoutStdin = try runRecurd(["--model", model.path, "--socket", directory.appendingPathComponent("s").path,
                                          "--expire-stdin-streams"], in: directory)
        assertCleanError(withoutStdin, mentions: ["--expire-stdin-streams", "--stdin"])
        let withoutTimeout = try runRecurd(["--model", model.path, "--stdin", "--idle-timeout", "0", "--expire-stdin-streams"],
                                           in: directory)
        assertCleanError(withoutTimeout, mentions: ["--expire-stdin-streams", "--idle-timeout"])
    }

    func testStdinWithSocket_summaryCountsTokensSocketClientsFedToTheStdinStream() throws {
        let (child, socket, _) = try startStdinDaemon(["--format", "tsv", "--log-level", "warning"])
        try child.writeStdin(Data("to be\n".utf8))
        try child.waitFor("the first line's events") { child.stdoutLinesSoFar.count >= 6 }
        let client = try SocketClient(path: socket)
        let fed = try client.request(["op": "feed", "stream": "stdin", "text": "or not"])
        XCTAssertEqual(fed.events.map { $0["offset"] as? Int }, Array(7...12))
        try child.writeStdin(Data("\nthat\n".utf8))
        try child.waitFor("the last lines' events") { child.stdoutLinesSoFar.count >= 11 }
        child.closeStdin()
        let result = try child.wait()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.map { Int($0.split(separator: "\t")[0]) }, Array(1...6) + Array(13...18))
        XCTAssertTrue(result.stderr.contains("recurd: 18 tokens (17 scored) in 1 stream"),
                      "the 6 tokens fed over the socket are counted too: \(result.stderr)")
    }
}
