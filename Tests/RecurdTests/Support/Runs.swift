import Foundation
import RecurTestSupport
import XCTest

extension XCTestCase {
    /// Runs `recurd arguments` to completion (for flag errors and --stdin runs).
    func runRecurd(_ arguments: [String], in directory: URL, stdin: Data? = nil, timeout: Double = 30) throws -> ProcessResult {
        try ChildProcess(Executables.recurd, arguments, in: directory, stdin: stdin ?? Data()).wait(timeout: timeout)
    }

    /// Runs `recur arguments` to completion.
    func runRecur(_ arguments: [String], in directory: URL, stdin: Data? = nil,
                  environment: [String: String] = [:], timeout: Double = 30) throws -> ProcessResult {
        try ChildProcess(Executables.recur, arguments, in: directory, stdin: stdin ?? Data(),
                         environment: environment).wait(timeout: timeout)
    }

    /// Asserts a clean user error: nonzero exit, no signal, one `prefix: error:` line on stderr
    /// containing every fragment, and no crash report.
    func assertCleanError(_ result: ProcessResult, program: String = "recurd", mentions fragments: [String],
                          file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(result.signalled, "killed by signal \(result.status); stderr: \(result.stderr)", file: file, line: line)
        XCTAssertNotEqual(result.status, 0, "expected failure; stderr: \(result.stderr)", file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "expected one line on stderr, got: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("\(program): error: "), "stderr: \(result.stderr)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(result.stderr.contains(fragment), "'\(fragment)' not in: \(result.stderr)", file: file, line: line)
        }
        for crash in ["Fatal error", "Backtrac", "crashed"] {
            XCTAssertFalse(result.stderr.contains(crash), "crash report: \(result.stderr)", file: file, line: line)
        }
    }
}
