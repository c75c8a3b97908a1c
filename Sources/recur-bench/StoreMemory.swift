import Foundation
import RecurCore
import RecurEngine
import RecurStore

/// `recur-bench --only memory`: creates `streams` streams (a few tokens each, 256 feeds in
/// flight) on an engine with at most `resident` streams in memory, and reports the process's
/// resident memory (VmRSS) every `streams / 10` streams. With a state directory evicted streams
/// go to the store; without one, `resident` should be at least `streams` (nothing may be lost).
enum StoreMemory {
    struct Row {
        var streams: Int
        var residentStreams: Int
        var rssMiB: Double
        var seconds: Double
    }

    static func measure(model: Model, streams: Int, resident: Int, stateDirectory: String?,
                        durability: Durability) throws -> [Row] {
        var store: StateStore?
        if let stateDirectory {
            var options = StateStore.Options()
            options.durability = durability
            store = try StateStore(directory: stateDirectory, fingerprint: ModelFingerprint(of: model), options: options)
        }
        var engineOptions = EngineOptions()
        engineOptions.maxResidentStreams = resident
        engineOptions.idleTimeout = nil
        let engine = StreamEngine(model: model, options: engineOptions, store: store)
        engine.start()
        defer {
            engine.shutdown()
            store?.close()
        }
        let rows = Rows()
        let done = DispatchSemaphore(value: 0)
        let start = ProcessInfo.processInfo.systemUptime
        Task {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for s in 0..<streams {
                        if s >= 256 { try await group.next() }
                        let tokens = String(s).utf8.map { Int32($0) % Int32(model.config.vocabularySize) }
                        group.addTask { _ = try await engine.feed(stream: "m\(s)", tokens: tokens, topK: 5, client: 1) }
                        if (s + 1) % max(1, streams / 10) == 0 {
                            try await group.waitForAll()
                            rows.add(Row(streams: s + 1, residentStreams: await engine.stats().streams, rssMiB: residentMiB(),
                                         seconds: ProcessInfo.processInfo.systemUptime - start))
                        }
                    }
                    try await group.waitForAll()
                }
            } catch {
                rows.fail(error)
            }
            done.signal()
        }
        done.wait()
        if let error = rows.error { throw error }
        return rows.all
    }

    /// VmRSS of this process, in MiB (0 where /proc is missing).
    static func residentMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kib / 1024
    }

    private final class Rows: @unchecked Sendable {
        private let lock = NSLock()
        private var rows: [Row] = []
        private(set) var error: (any Error)?
        func add(_ row: Row) { lock.withLock { rows.append(row) } }
        func fail(_ e: any Error) { lock.withLock { error = e } }
        var all: [Row] { lock.withLock { rows } }
    }
}
