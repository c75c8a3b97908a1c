import Foundation
import RecurTestSupport
import XCTest

/// `recurd --stdin`: text through a pipe, an event per token out, in JSON or TSV, one stream or
/// one per key.
final class StdinModeTests: XCTestCase {
    private let model = Repository.shakespeareModel

    func testStdin_json_eventsEqualRecurEvalAndEndWithASummary() throws {
        let directory = try makeWorkDirectory(self)
        let text = try String(contentsOf: Repository.hamlet, encoding: .utf8)
        let reference = try recurEvalPerToken(model: model, text: text, in: directory)
        let result = try runRecurd(["--model", model.path, "--stdin"], in: directory, stdin: Data(text.utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let events = try result.lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        assertEventsMatchEval(events, reference, stream: "stdin")
        XCTAssertEqual((events.first?["next"] as? [Any])?.count, 5, "the default k is 5")
        XCTAssertTrue(result.stderr.contains("\(text.count) tokens"), "a summary at the end; stderr: \(result.stderr)")
    }

    func testStdin_tsv_matchesRecurEvalPerTokenColumns() throws {
        let directory = try makeWorkDirectory(self)
        let text = try String(contentsOf: Repository.hamlet, encoding: .utf8)
        let file = directory.appendingPathComponent("hamlet.txt")
        try Data(text.utf8).write(to: file)
        let eval = try runRecur(["eval", model.path, file.path, "--per-token"], in: directory)
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let expected = eval.lines.filter { $0.split(separator: "\t").count == 3 }
        let result = try runRecurd(["--model", model.path, "--stdin", "--format", "tsv", "--top-k", "2"],
                                   in: directory, stdin: Data(text.utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = result.lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        XCTAssertEqual(rows.count, text.count)
        XCTAssertEqual(rows.first?[0], "1")
        XCTAssertEqual(rows.first?[2], "-", "the first token has no prediction")
        // offset, token and logprob read exactly as `recur eval --per-token` prints them.
        XCTAssertEqual(rows.dropFirst().map { $0[0..<3].joined(separator: "\t") }, expected)
        for row in rows {
            XCTAssertEqual(row.count, 4, "offset, token, logprob, top-k: \(row)")
            XCTAssertEqual(row.last?.split(separator: ",").count, 2, "k = 2 candidates as tok:p: \(row)")
        }
    }

    func testStdin_keyField_keepsOneStreamPerKey() throws {
        let directory = try makeWorkDirectory(self)
        let lines: [(String, String)] = [
            ("web-1", "to be or not to be"), ("db-2", "that is the question"), ("web-1", "whether tis nobler"),
            ("db-2", "in the mind to suffer"), ("web-1", "the slings and arrows"),
        ]
        let input = lines.map { "\($0.0)\t\($0.1)\n" }.joined()
        let result = try runRecurd(["--model", model.path, "--stdin", "--key-field", "--format", "json"],
                                   in: directory, stdin: Data(input.utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let events = try result.lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        for key in ["web-1", "db-2"] {
            let text = lines.filter { $0.0 == key }.map { $0.1 + "\n" }.joined()
            let reference = try recurEvalPerToken(model: model, text: text, in: directory)
            assertEventsMatchEval(events.filter { $0["stream"] as? String == key }, reference, stream: key)
        }
        XCTAssertEqual(events.count, lines.map { $0.1.count + 1 }.reduce(0, +),
                       "every character after the tab, newline included, is a token; the keys are not")
    }

    func testStdin_keyFieldTSV_prefixesTheKey() throws {
        let directory = try makeWorkDirectory(self)
        let input = "a\tto be\nb\tor not\na\tto be\n"
        let result = try runRecurd(["--model", model.path, "--stdin", "--key-field", "--format", "tsv"],
                                   in: directory, stdin: Data(input.utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = result.lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        XCTAssertEqual(rows.count, 6 + 7 + 6)
        XCTAssertEqual(rows.filter { $0[0] == "a" }.map { Int($0[1])! }, Array(1...12), "stream a continues across its lines")
        XCTAssertEqual(rows.filter { $0[0] == "b" }.map { Int($0[1])! }, Array(1...7))
        XCTAssertTrue(rows.allSatisfy { $0.count == 5 }, "key, offset, token, logprob, top-k")
    }

    func testStdin_heldOpen_flushesEventsAsEachLineArrives() throws {
        let directory = try makeWorkDirectory(self)
        let child = try ChildProcess(Executables.recurd, ["--model", model.path, "--stdin", "--format", "tsv"],
                                     in: directory, keepStdinOpen: true)
        try child.writeStdin(Data("To be, or not to be\n".utf8))
        // Like `tail -f`: the pipe stays open, yet the events of the first line appear.
        try child.waitFor("the first line's 20 events") { child.stdoutLinesSoFar.count >= 20 }
        XCTAssertEqual(child.stdoutLinesSoFar.count, 20)
        try child.writeStdin(Data("that is the question\n".utf8))
        try child.waitFor("the second line's events") { child.stdoutLinesSoFar.count >= 41 }
        child.closeStdin()
        let result = try child.wait()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.count, 41)
        XCTAssertEqual(result.lines.last?.split(separator: "\t").first, "41")
    }

    func testStdin_byteModelWithBinaryJunk_absorbsEveryByte() throws {
        let directory = try makeWorkDirectory(self)
        let input: [UInt8] = Array("GET /".utf8) + [0xFF, 0x00, 0xC3] + Array("ok\n".utf8)
        let result = try runRecurd(["--model", Repository.logsModel.path, "--stdin", "--format", "tsv"],
                                   in: directory, stdin: Data(input))
        XCTAssertEqual(result.status, 0, result.stderr)
        let tokens = result.lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false)[1] }
        XCTAssertEqual(tokens, ["G", "E", "T", " ", "/", "\\xFF", "\\x00", "\\xC3", "o", "k", "\\x0A"])
    }

    func testStdin_charModelWithUnknownCharacter_reportsItAndGoesOn() throws {
        let directory = try makeWorkDirectory(self)
        let child = try ChildProcess(Executables.recurd, ["--model", model.path, "--stdin", "--format", "tsv"],
                                     in: directory, keepStdinOpen: true)
        try child.writeStdin(Data("to be\n".utf8))
        try child.waitFor("the first line's events") { child.stdoutLinesSoFar.count >= 6 }
        // '€' is not in the Shakespeare vocabulary (65 ASCII symbols, unknown policy: error).
        try child.writeStdin(Data("price €\n".utf8))
        try child.waitFor("the error on stderr") { child.stderrText.contains("U+20AC") }
        try child.writeStdin(Data("or not\n".utf8))
        try child.waitFor("the third line's events") { child.stdoutLinesSoFar.count >= 20 }
        child.closeStdin()
        let result = try child.wait()
        XCTAssertEqual(result.status, 0, result.stderr)
        let tokens = result.lines.map { String($0.split(separator: "\t", omittingEmptySubsequences: false)[1]) }
        XCTAssertEqual(tokens, "to be\nprice \nor not\n".map { $0 == "\n" ? "\\n" : String($0) },
                       "only the unknown character is skipped; the rest of its line and the lines around it are absorbed")
        XCTAssertTrue(result.stderr.contains("line 2, stream 'stdin': skipped character U+20AC"), result.stderr)
    }
}
