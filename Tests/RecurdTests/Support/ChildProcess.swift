import Foundation
import XCTest

/// What one run of a built executable did.
struct ProcessResult {
    var status: Int32
    /// Whether the process ended by a signal it did not handle (`status` is then the signal).
    var signalled: Bool
    var stdout: String
    var stderr: String

    /// The stdout lines, without the empty one after the final newline.
    var lines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }
}

/// A running `recurd` or `recur`, with stdout and stderr going to files in its directory and
/// stdin from a pipe the test may keep writing to.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL
    private let input: Pipe?

    /// Starts `executable arguments` in `directory`. With `stdin` given, it is written and the
    /// pipe closed; with `keepStdinOpen`, the test writes through `writeStdin` and `closeStdin`.
    init(_ executable: URL, _ arguments: [String], in directory: URL, stdin: Data? = nil,
         keepStdinOpen: Bool = false, environment extra: [String: String] = [:]) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        let id = UUID().uuidString.prefix(8)
        stdoutURL = directory.appendingPathComponent("\(executable.lastPathComponent)-\(id).out")
        stderrURL = directory.appendingPathComponent("\(executable.lastPathComponent)-\(id).err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        if stdin != nil || keepStdinOpen {
            let pipe = Pipe()
            input = pipe
            process.standardInput = pipe
        } else {
            input = nil
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        if let stdin {
            try writeStdin(stdin)
            closeStdin()
        }
    }

    func writeStdin(_ data: Data) throws {
        try input?.fileHandleForWriting.write(contentsOf: data)
    }

    func closeStdin() {
        try? input?.fileHandleForWriting.close()
    }

    var isRunning: Bool { process.isRunning }

    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Stdout so far.
    var stdoutSoFar: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }

    /// Stdout lines so far that are complete.
    var stdoutLinesSoFar: [String] {
        stdoutSoFar.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    /// Waits for the exit, at most `timeout` seconds; then kills it and throws.
    @discardableResult
    func wait(timeout: Double = 30) throws -> ProcessResult {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw TestFailure("\(process.executableURL!.lastPathComponent) did not exit within \(timeout) s; stderr: \(stderrText)")
            }
            usleep(10_000)
        }
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus,
                             signalled: process.terminationReason == .uncaughtSignal,
                             stdout: stdoutSoFar, stderr: stderrText)
    }

    var stderrText: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Polls `condition` every 10 ms until it holds, at most `timeout` seconds.
    func waitFor(_ what: String, timeout: Double = 20, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline { throw TestFailure("timed out after \(timeout) s waiting for \(what); stderr: \(stderrText)") }
            if !process.isRunning && !condition() {
                throw TestFailure("the process exited (\(process.terminationStatus)) while waiting for \(what); stderr: \(stderrText)")
            }
            usleep(10_000)
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A test-setup failure with a sentence saying what went wrong.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

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
