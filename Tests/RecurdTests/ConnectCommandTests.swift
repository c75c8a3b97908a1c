import Foundation
import RecurTestSupport
import XCTest

/// `recur connect`: stdin to a daemon's stream, predictions out, readable or as JSON lines.
final class ConnectCommandTests: XCTestCase {
    func testConnect_pipedTextWithJSON_printsEventsEqualToRecurEval() throws {
        let daemon = try Daemon.start(self)
        let text = String(repeating: try String(contentsOf: Repository.hamlet, encoding: .utf8), count: 8)
        let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: text, in: daemon.directory)
        // About 5 000 tokens through debug builds: seconds on a quiet machine, but a loaded CI
        // machine was seen to need more than the default 30 s, which is only a hang guard.
        let result = try runRecur(["connect", "--socket", daemon.socketPath, "--stream", "piped", "--json"],
                                  in: daemon.directory, stdin: Data(text.utf8), timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr)
        let messages = try result.lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        assertEventsMatchEval(messages.filter(Protocol.isTokenEvent), reference, stream: "piped")
        XCTAssertTrue(messages.contains { $0["done"] as? Bool == true }, "the daemon's feed replies are printed too")
        XCTAssertGreaterThan(text.utf8.count, 4096, "the text spans several reads of stdin")
    }

    func testConnect_readable_printsOffsetTokenLogprobAndTopThree() throws {
        let daemon = try Daemon.start(self)
        let result = try runRecur(["connect", "--socket", daemon.socketPath, "--stream", "r"],
                                  in: daemon.directory, stdin: Data("To be, or".utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = result.lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        XCTAssertEqual(rows.map { $0[0] }, (1...9).map(String.init))
        XCTAssertEqual(rows.map { $0[1] }, ["T", "o", " ", "b", "e", ",", " ", "o", "r"])
        XCTAssertEqual(rows[0][2], "-", "the first token has no prediction")
        XCTAssertNotNil(Double(rows[1][2]), "a log-probability: \(rows[1])")
        XCTAssertTrue(rows.allSatisfy { $0.count == 4 && $0[3].split(separator: ",").count == 3 },
                      "three predictions, token:probability each: \(rows)")
        // A second run continues the named stream.
        let again = try runRecur(["connect", "--socket", daemon.socketPath, "--stream", "r"],
                                 in: daemon.directory, stdin: Data(" not".utf8))
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.lines.map { $0.split(separator: "\t").first.map(String.init) }, ["10", "11", "12", "13"])
    }

    func testConnect_readableTokens_lookAsRecurdTSVShowsThem_forCharAndByteModels() throws {
        for model in [Repository.shakespeareModel, Repository.logsModel] {
            let daemon = try Daemon.start(self, model: model)
            let text = "To be,\n or not"
            let connect = try runRecur(["connect", "--socket", daemon.socketPath, "--stream", "c"],
                                       in: daemon.directory, stdin: Data(text.utf8))
            XCTAssertEqual(connect.status, 0, connect.stderr)
            let tsv = try runRecurd(["--model", model.path, "--stdin", "--format", "tsv"], in: daemon.directory, stdin: Data(text.utf8))
            XCTAssertEqual(tsv.status, 0, tsv.stderr)
            let column = { (lines: [String]) in lines.map { String($0.split(separator: "\t", omittingEmptySubsequences: false)[1]) } }
            XCTAssertEqual(column(connect.lines), column(tsv.lines), "\(model.lastPathComponent): the same token column")
            XCTAssertTrue(column(connect.lines).contains(" "), "a space shows as a space")
        }
    }

    func testConnect_json_printsOneReplyPerFeedOfTheInputAndNoEmptyFlushReply() throws {
        let daemon = try Daemon.start(self)
        let result = try runRecur(["connect", "--socket", daemon.socketPath, "--stream", "j", "--json"],
                                  in: daemon.directory, stdin: Data("to be".utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let messages = try result.lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let replies = messages.filter { $0["done"] as? Bool == true }
        XCTAssertEqual(messages.filter(Protocol.isTokenEvent).count, 5)
        XCTAssertEqual(replies.count, 1, "the end-of-input flush absorbed nothing, so its reply is not printed: \(result.stdout)")
        XCTAssertEqual(replies.first?["tokens"] as? Int, 5)
        XCTAssertEqual(messages.last?["done"] as? Bool, true, "the feed's reply comes last")
    }

    func testConnect_withoutStream_usesAPrivateStreamFromOffsetOne() throws {
        let daemon = try Daemon.start(self)
        for _ in 0..<2 {
            let result = try runRecur(["connect", "--socket", daemon.socketPath, "--json", "--top-k", "1"],
                                      in: daemon.directory, stdin: Data("to be".utf8))
            XCTAssertEqual(result.status, 0, result.stderr)
            let events = try result.lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
                .filter(Protocol.isTokenEvent)
            XCTAssertEqual(events.map { $0["offset"] as? Int }, [1, 2, 3, 4, 5])
            XCTAssertTrue(events.allSatisfy { ($0["next"] as? [Any])?.count == 1 })
        }
    }

    func testConnect_socketFromEnvironment_isUsedWithoutFlag() throws {
        let daemon = try Daemon.start(self)
        let result = try runRecur(["connect", "--stream", "env"], in: daemon.directory, stdin: Data("to".utf8),
                                  environment: ["RECURD_SOCKET": daemon.socketPath])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.count, 2)
    }

    func testConnect_withoutDaemon_failsWithOneLineNamingTheSocket() throws {
        let directory = try makeWorkDirectory(self)
        let socket = directory.appendingPathComponent("none.sock").path
        let missing = try runRecur(["connect", "--socket", socket], in: directory, stdin: Data("x".utf8))
        assertCleanError(missing, program: "recur", mentions: [socket, "recurd"])
        try Data().write(to: URL(fileURLWithPath: socket))
        let notSocket = try runRecur(["connect", "--socket", socket], in: directory, stdin: Data("x".utf8))
        assertCleanError(notSocket, program: "recur", mentions: [socket, "not a socket"])
    }

    func testConnect_textTheModelCannotTokenize_reportsTheDaemonsError() throws {
        let daemon = try Daemon.start(self)
        let result = try runRecur(["connect", "--socket", daemon.socketPath, "--stream", "e"],
                                  in: daemon.directory, stdin: Data("5€".utf8))
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.signalled)
        XCTAssertTrue(result.stderr.contains("bad_value"), "stderr: \(result.stderr)")
    }
}
