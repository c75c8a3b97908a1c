import Foundation
import RecurTestSupport
import XCTest

/// What one run of the built `recur` binary did.
typealias RecurResult = ProcessResult

/// Runs the `recur` executable that `swift test` built next to the test bundle (the test
/// target depends on it, so it is always up to date), through RecurTestSupport's `ChildProcess`.
enum Recur {
    /// How long one run may take before it is killed and the test fails: training runs take
    /// seconds, but the machine may be loaded.
    static let timeout: Double = 600

    /// Starts `recur arguments` in `directory` with stdout and stderr going to files there.
    static func start(_ arguments: [String], in directory: URL, stdin: Data? = nil) throws -> ChildProcess {
        try ChildProcess(Executables.recur, arguments, in: directory, stdin: stdin,
                         environment: ["RECUR_LOG_LEVEL": "info"])
    }

    /// Runs `recur arguments` to completion (at most `timeout` seconds).
    static func run(_ arguments: [String], in directory: URL, stdin: Data? = nil) throws -> RecurResult {
        try start(arguments, in: directory, stdin: stdin).wait(timeout: timeout)
    }
}

/// Parses one JSON object, failing the test with the text when it is not one.
func jsonObject(_ text: some StringProtocol, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    let data = Data(text.utf8)
    guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        XCTFail("not a JSON object: \(text)", file: file, line: line)
        return [:]
    }
    return object
}

extension XCTestCase {
    /// Asserts a clean user error: nonzero exit, one `recur: error:` line containing every
    /// fragment, and no crash report.
    func assertCleanError(_ result: RecurResult, mentions fragments: [String],
                          file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(result.status, 0, "expected failure; stderr: \(result.stderr)", file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "expected one line on stderr, got: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("recur: error: "), "stderr: \(result.stderr)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(result.stderr.contains(fragment), "'\(fragment)' not in: \(result.stderr)", file: file, line: line)
        }
        for crash in ["Fatal error", "Backtrac", "crashed"] {
            XCTAssertFalse(result.stderr.contains(crash), "crash report: \(result.stderr)", file: file, line: line)
        }
    }
}
