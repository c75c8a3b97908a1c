import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one run of a built executable did.
public struct ProcessResult: Sendable {
    public var status: Int32
    /// Whether the process ended by a signal it did not handle (`status` is then the signal).
    public var signalled: Bool
    public var stdout: String
    public var stderr: String

    /// The stdout lines, without the empty one after the final newline.
    public var lines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }
}

/// A running `recurd` or `recur`, with stdout and stderr going to files in its directory and
/// stdin from a pipe the test may keep writing to. Killed when released while still running.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let stdoutURL: URL
    public let stderrURL: URL
    private let input: Pipe?

    /// Starts `executable arguments` in `directory`, its environment the test's plus `extra`.
    /// With `stdin` given, it is written and the pipe closed (a process that exits before
    /// reading it is not an error here: its exit status tells); with `keepStdinOpen`, the test
    /// writes through `writeStdin` and `closeStdin`.
    public init(_ executable: URL, _ arguments: [String], in directory: URL, stdin: Data? = nil,
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
        // A child that exits before reading its input makes the write fail with EPIPE, which
        // must not kill the test process with SIGPIPE.
        _ = Glibc.signal(SIGPIPE, SIG_IGN)
        try process.run()
        if let stdin {
            try? writeStdin(stdin)
            closeStdin()
        }
    }

    public func writeStdin(_ data: Data) throws {
        try input?.fileHandleForWriting.write(contentsOf: data)
    }

    public func closeStdin() {
        try? input?.fileHandleForWriting.close()
    }

    public var isRunning: Bool { process.isRunning }

    public func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Stdout so far.
    public var stdoutSoFar: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }

    /// Stdout lines so far that are complete.
    public var stdoutLinesSoFar: [String] {
        stdoutSoFar.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    public var stderrText: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits for the exit, at most `timeout` seconds; then kills it and throws.
    @discardableResult
    public func wait(timeout: Double = 30) throws -> ProcessResult {
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

    /// Waits until `condition` holds, at most `timeout` seconds (`eventually`, failing with the
    /// stderr it last saw); throws at once when the process exits first, with its status and stderr.
    public func waitFor(_ what: String, timeout: Double = 20,
                        file: StaticString = #filePath, line: UInt = #line, _ condition: () -> Bool) throws {
        try eventually(what, timeout: .seconds(timeout), file: file, line: line, { () throws -> Progress in
            if condition() { return .done }
            if !process.isRunning && !condition() {
                throw TestFailure("the process exited (\(process.terminationStatus)) while waiting for \(what); stderr: \(stderrText)")
            }
            return .waiting(stderr: stderrText)
        }, until: { $0 == .done })
    }

    /// What `waitFor` last saw.
    private enum Progress: Equatable, CustomStringConvertible {
        case done
        case waiting(stderr: String)

        var description: String {
            switch self {
            case .done: "done"
            case .waiting(let stderr): "not yet; stderr: \(stderr)"
            }
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
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
