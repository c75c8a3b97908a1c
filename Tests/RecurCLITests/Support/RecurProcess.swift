import Foundation
import XCTest

/// What one run of the built `recur` binary did.
struct RecurResult {
    var status: Int32
    var stdout: String
    var stderr: String

    /// The stdout lines, without the empty one after the final newline.
    var lines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }
}

/// Runs the `recur` executable that `swift test` built next to the test bundle (the test
/// target depends on it, so it is always up to date).
enum Recur {
    static let executable: URL = {
        var candidates: [URL] = Bundle.allBundles.map(\.bundleURL).filter { $0.pathExtension == "xctest" }
            .map { $0.deletingLastPathComponent() }
        candidates.append(Bundle.main.bundleURL)
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        for directory in candidates {
            let url = directory.appendingPathComponent("recur")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        fatalError("cannot find the built 'recur' executable near \(candidates.map(\.path))")
    }()

    /// Starts `recur arguments` in `directory` with stdout and stderr going to files there.
    static func start(_ arguments: [String], in directory: URL, stdin: Data? = nil) throws -> RunningRecur {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var environment = ProcessInfo.processInfo.environment
        environment["RECUR_LOG_LEVEL"] = "info"
        process.environment = environment
        let id = UUID().uuidString
        let out = directory.appendingPathComponent("stdout-\(id)"), err = directory.appendingPathComponent("stderr-\(id)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        var input: Pipe?
        if stdin != nil {
            input = Pipe()
            process.standardInput = input
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        if let stdin, let input {
            // recur may exit before reading its input (a bad model file): the write then fails
            // with EPIPE, which must not kill the test process with SIGPIPE.
            signal(SIGPIPE, SIG_IGN)
            try? input.fileHandleForWriting.write(contentsOf: stdin)
            try input.fileHandleForWriting.close()
        }
        return RunningRecur(process: process, stdoutURL: out, stderrURL: err)
    }

    /// Runs `recur arguments` to completion.
    static func run(_ arguments: [String], in directory: URL, stdin: Data? = nil) throws -> RecurResult {
        try start(arguments, in: directory, stdin: stdin).wait()
    }
}

/// A `recur` process still running (the interrupt test signals it).
struct RunningRecur {
    let process: Process
    let stdoutURL: URL
    let stderrURL: URL

    func wait() throws -> RecurResult {
        process.waitUntilExit()
        defer {
            try? FileManager.default.removeItem(at: stdoutURL)
            try? FileManager.default.removeItem(at: stderrURL)
        }
        return RecurResult(status: process.terminationStatus,
                           stdout: try String(contentsOf: stdoutURL, encoding: .utf8),
                           stderr: try String(contentsOf: stderrURL, encoding: .utf8))
    }
}

/// A fresh temporary directory, removed at the end of the test.
func makeWorkDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("recur-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
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
