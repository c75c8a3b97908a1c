import Foundation
import XCTest

/// Thrown by `eventually` when its deadline passes; the test failure naming what was awaited
/// and what was last seen is already recorded, so the test only has to stop.
public struct EventuallyTimedOut: Error, CustomStringConvertible {
    /// What was awaited.
    public let what: String
    public var description: String { "gave up waiting for \(what) (the failure above says what was last seen)" }
}

/// How long `eventually` sleeps between two looks unless told: short, so a test moves on as
/// soon as the condition holds; the deadline, not this, bounds the wait.
public let eventuallyInterval: Duration = .milliseconds(5)

/// Waits, at most `timeout`, until `observe()` returns a value that satisfies `isDone`, looking
/// again every few milliseconds; returns that value. On timeout it records a test failure that
/// names `what` and the value it last saw, and throws `EventuallyTimedOut`: a failing test fails
/// with what it saw, it never hangs the run. An error thrown by `observe` ends the wait at once
/// (e.g. "the process exited while we waited"). `interval` is the pause between two looks: longer
/// when a look is costly (running `systemctl show`).
///
///     try await eventually("2 jobs queued on s", { engine.queuedJobs(on: "s") }, until: { $0 >= 2 })
@discardableResult
public func eventually<Value>(_ what: String, timeout: Duration = .seconds(10), interval: Duration = eventuallyInterval,
                              file: StaticString = #filePath, line: UInt = #line,
                              _ observe: () async throws -> Value,
                              until isDone: (Value) throws -> Bool) async throws -> Value {
    let deadline = ContinuousClock.now + timeout
    while true {
        let value = try await observe()
        if try isDone(value) { return value }
        guard ContinuousClock.now < deadline else {
            throw timedOut(what, timeout: timeout, lastSeen: value, file: file, line: line)
        }
        try await Task.sleep(for: interval)
    }
}

/// `eventually` for a condition with nothing more to show than whether it holds.
public func eventually(_ what: String, timeout: Duration = .seconds(10),
                       file: StaticString = #filePath, line: UInt = #line,
                       _ condition: () async throws -> Bool) async throws {
    try await eventually(what, timeout: timeout, file: file, line: line, condition, until: { $0 })
}

/// The synchronous `eventually`, for tests that block (socket clients, child processes): the
/// same contract, sleeping the calling thread between looks. Disfavoured, so that an async test
/// passing plain closures gets the async `eventually` and never blocks a cooperative thread.
@_disfavoredOverload
@discardableResult
public func eventually<Value>(_ what: String, timeout: Duration = .seconds(10), interval: Duration = eventuallyInterval,
                              file: StaticString = #filePath, line: UInt = #line,
                              _ observe: () throws -> Value,
                              until isDone: (Value) throws -> Bool) throws -> Value {
    let deadline = ContinuousClock.now + timeout
    while true {
        let value = try observe()
        if try isDone(value) { return value }
        guard ContinuousClock.now < deadline else {
            throw timedOut(what, timeout: timeout, lastSeen: value, file: file, line: line)
        }
        Thread.sleep(forTimeInterval: Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18)
    }
}

/// The synchronous `eventually` for a plain condition.
@_disfavoredOverload
public func eventually(_ what: String, timeout: Duration = .seconds(10),
                       file: StaticString = #filePath, line: UInt = #line,
                       _ condition: () throws -> Bool) throws {
    try eventually(what, timeout: timeout, file: file, line: line, condition, until: { $0 })
}

private func timedOut<Value>(_ what: String, timeout: Duration, lastSeen: Value,
                             file: StaticString, line: UInt) -> EventuallyTimedOut {
    var message = "timed out after \(timeout) waiting for \(what)"
    if Value.self != Bool.self { message += "; last saw: \(lastSeen)" }
    XCTFail(message, file: file, line: line)
    return EventuallyTimedOut(what: what)
}
