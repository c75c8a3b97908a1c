import Foundation
import RecurTestSupport
import XCTest

/// The committed samples work as samples/README.md says: the Python client, the log
/// generator and the log-anomaly demo (small sizes, so the suite stays quick).
final class SamplesTests: XCTestCase {
    private static let env = URL(fileURLWithPath: "/usr/bin/env")

    private func requirePython(in directory: URL) throws {
        let probe = try? ChildProcess(Self.env, ["python3", "--version"], in: directory, stdin: Data()).wait()
        guard probe?.status == 0 else { throw XCTSkip("python3 is not installed") }
    }

    private func python(_ arguments: [String], in directory: URL, stdin: Data = Data()) throws -> ProcessResult {
        try ChildProcess(Self.env, ["python3"] + arguments, in: directory, stdin: stdin).wait(timeout: 60)
    }

    func testClientPy_againstDaemon_printsEachLinesMeanSurprisalAsRecurEvalGives() throws {
        let daemon = try Daemon.start(self)
        try requirePython(in: daemon.directory)
        let text = try String(contentsOf: Repository.hamlet, encoding: .utf8)
        let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: text, in: daemon.directory)
        let script = Repository.root.appendingPathComponent("samples/client.py").path
        let result = try python([script, "--socket", daemon.socketPath, Repository.hamlet.path], in: daemon.directory)
        XCTAssertEqual(result.status, 0, result.stderr)

        // Each line's tokens run through its newline; the text's first token has no logprob.
        var expected: [Double] = []
        var sum = 0.0, count = 0
        for token in reference {
            sum -= Double(token.logprob)
            count += 1
            if token.token == "\n" {
                expected.append(sum / Double(count))
                sum = 0
                count = 0
            }
        }
        let lines = text.split(separator: "\n")
        XCTAssertEqual(result.lines.count, lines.count)
        for (i, line) in result.lines.enumerated() where i < lines.count {
            let columns = line.split(separator: "\t", maxSplits: 1)
            XCTAssertEqual(columns.last.map(String.init), String(lines[i]))
            let surprisal = Double(columns[0].trimmingCharacters(in: .whitespaces)) ?? .nan
            XCTAssertEqual(surprisal, expected[i], accuracy: 0.0006, "line \(i + 1): \(line)")
        }
    }

    func testClientPy_binaryInputAndABrokenPipe_printEscapesAndNoTraceback() throws {
        let daemon = try Daemon.start(self, model: Repository.logsModel)
        try requirePython(in: daemon.directory)
        let script = Repository.root.appendingPathComponent("samples/client.py").path
        let junk = daemon.directory.appendingPathComponent("junk.log")
        try Data(Array("GET /\u{1B}[2J ok\n".utf8) + [0x00, 0xFF, 0x07, 0x0D] + Array(" done\n".utf8)).write(to: junk)
        let result = try python([script, "--socket", daemon.socketPath, junk.path], in: daemon.directory)
        XCTAssertEqual(result.status, 0, result.stderr)
        let shown = result.lines.map { $0.split(separator: "\t", maxSplits: 1).last.map(String.init) ?? "" }
        XCTAssertEqual(shown, ["GET /\\x1B[2J ok", "\\x00\\uFFFD\\x07\\x0D done"], "control bytes are escaped, not sent to the terminal")

        let lines = daemon.directory.appendingPathComponent("lines.txt")
        try Data(String(repeating: "GET /index ok\n", count: 60).utf8).write(to: lines)
        let piped = try ChildProcess(URL(fileURLWithPath: "/bin/sh"),
                                     ["-c", "python3 \"$0\" --socket \"$1\" \"$2\" | head -n 1", script, daemon.socketPath, lines.path],
                                     in: daemon.directory, stdin: Data()).wait(timeout: 60)
        XCTAssertEqual(piped.lines.count, 1)
        XCTAssertFalse(piped.stderr.contains("Traceback") || piped.stderr.contains("BrokenPipe"), piped.stderr)
    }

    func testGenerateLogs_sameSeed_givesSameBytesAndListsTheInjectedLines() throws {
        let directory = try makeWorkDirectory(self)
        try requirePython(in: directory)
        let script = Repository.root.appendingPathComponent("samples/logs/generate_logs.py").path
        let arguments = [script, "--bytes", "20000", "--seed", "5", "--inject", "4", "--truth", "truth.txt"]
        let first = try python(arguments, in: directory)
        let second = try python(arguments, in: directory)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.stdout, second.stdout, "seeded: the same arguments give the same log")
        let truth = try String(contentsOf: directory.appendingPathComponent("truth.txt"), encoding: .utf8)
            .split(separator: "\n").compactMap { Int($0) }
        XCTAssertEqual(truth.count, 4)
        XCTAssertGreaterThan(first.stdout.utf8.count, 20000)
    }

    func testDemo_smallLog_ranksTheInjectedLinesFirst() throws {
        let directory = try makeWorkDirectory(self)
        try requirePython(in: directory)
        let script = Repository.root.appendingPathComponent("samples/logs/demo.sh").path
        let result = try ChildProcess(Self.env, ["bash", script, "3", "3", "7"], in: directory, stdin: Data(),
                                      environment: ["RECURD": Executables.recurd.path, "BYTES": "20000"]).wait(timeout: 180)  // a hang guard; debug builds on a loaded machine
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("3 of the 3 injected lines are among the top 3"), result.stdout)
    }
}
