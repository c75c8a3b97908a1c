import Foundation
import RecurCore
import XCTest
@testable import RecurEngine

/// An in-memory `StreamStore` for engine tests: it logs (or not), records every call, can hold
/// appends until the test releases them, and can fail appends and saves like a full disk.
/// Completions are always called from another thread, never from inside the call.
final class FakeStore: StreamStore, @unchecked Sendable {
    struct DiskFull: Error, CustomStringConvertible {
        var description: String { "the disk is full" }
    }

    let logsTokens: Bool
    private let lock = NSLock()
    private let answers = DispatchQueue(label: "fake-store")
    private var snapshots: [String: StreamSnapshot] = [:]
    private var logs: [String: [Int32]] = [:]
    private var held: [@Sendable () -> Void] = []
    private var _appends: [(stream: String, offset: Int, tokens: [Int32])] = []
    /// Appends are held until `releaseAppends()`.
    var holdAppends = false
    /// Appends after this many fail.
    var failAppendsAfter: Int?
    /// Saves (streams leaving memory) fail while set.
    var failSaves = false

    init(logsTokens: Bool) { self.logsTokens = logsTokens }

    var appends: [(stream: String, offset: Int, tokens: [Int32])] { lock.withLock { _appends } }

    /// Answers every held append, in order.
    func releaseAppends() {
        let answers = lock.withLock { () -> [@Sendable () -> Void] in
            defer { held = [] }
            return held
        }
        for answer in answers { self.answers.async(execute: answer) }
    }

    /// Waits until `count` appends were made, failing with what was seen at the deadline.
    func waitForAppends(_ count: Int, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date().addingTimeInterval(timeout)
        while appends.count < count {
            guard Date() < deadline else {
                XCTFail("waited \(timeout) s for \(count) appends; saw \(appends.map { ($0.offset, $0.tokens.count) })", file: file, line: line)
                return
            }
            usleep(1000)
        }
    }

    func append(stream: String, offset: Int, tokens: [Int32], pendingText: [UInt8], owner: UInt32, created: Double,
                completion: @escaping @Sendable ((any Error)?) -> Void) {
        let answer: (@Sendable () -> Void)? = lock.withLock {
            if let failAppendsAfter, _appends.count >= failAppendsAfter {
                return { completion(DiskFull()) }
            }
            _appends.append((stream, offset, tokens))
            logs[stream, default: []] += tokens
            if holdAppends {
                held.append { completion(nil) }
                return nil
            }
            return { completion(nil) }
        }
        if let answer { answers.async(execute: answer) }
    }

    func rebase(_ snapshot: StreamSnapshot, historyOf source: String?, completion: @escaping @Sendable ((any Error)?) -> Void) {
        lock.withLock {
            snapshots[snapshot.stream] = snapshot
            logs[snapshot.stream] = nil
        }
        answers.async { completion(nil) }
    }

    func end(stream: String, completion: @escaping @Sendable ((any Error)?) -> Void) {
        lock.withLock {
            snapshots[stream] = nil
            logs[stream] = nil
        }
        answers.async { completion(nil) }
    }

    func checkpoint(_ snapshot: StreamSnapshot) {
        lock.withLock {
            snapshots[snapshot.stream] = snapshot
            logs[snapshot.stream] = nil
        }
    }

    func save(_ snapshot: StreamSnapshot, completion: @escaping @Sendable ((any Error)?) -> Void) {
        let failing = lock.withLock { () -> Bool in
            if failSaves { return true }
            snapshots[snapshot.stream] = snapshot
            logs[snapshot.stream] = nil
            return false
        }
        answers.async { completion(failing ? DiskFull() : nil) }
    }

    /// Streams with a snapshot (a stream only logged is not loadable here).
    var storedStreamCount: Int { lock.withLock { snapshots.count } }

    func contains(stream: String) -> Bool { lock.withLock { snapshots[stream] != nil } }

    func modelChanged(to fingerprint: ModelFingerprint) {}

    func load(stream: String, completion: @escaping @Sendable (Result<StoredStream?, any Error>) -> Void) {
        let found: StoredStream? = lock.withLock {
            guard let snapshot = snapshots[stream] else { return nil }
            return StoredStream(snapshot: snapshot, replay: logs[stream] ?? [], pendingText: snapshot.pendingText)
        }
        answers.async { completion(.success(found)) }
    }
}
