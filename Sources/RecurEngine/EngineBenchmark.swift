import Foundation
import RecurCore

extension StreamEngine {
    /// Tokens per second of the engine loop stepping `streams` streams `steps` tokens each, with
    /// top-5 predictions per token: everything a feed costs except tokenization and the socket.
    ///
    /// Runs on a private engine over the same model (with this engine's maxBatch), so the
    /// streams of this one are untouched; blocks the calling thread until done.
    public func benchmarkSteps(streams: Int, steps: Int) -> Double {
        precondition(streams >= 1 && steps >= 1, "benchmarkSteps needs at least one stream and one step, not \(streams) × \(steps)")
        var benchOptions = EngineOptions()
        benchOptions.maxBatch = options.maxBatch
        benchOptions.precision = options.precision
        benchOptions.maxResidentStreams = streams
        benchOptions.idleTimeout = nil
        let engine = StreamEngine(model: model, options: benchOptions)
        let V = model.config.vocabularySize
        var rng = SeededGenerator(seed: 42)
        let progress = BenchmarkProgress(remaining: streams)
        // Everything is queued before the thread starts, so every step is a full batch.
        for s in 0..<streams {
            let tokens = (0..<steps).map { _ in Int32(truncatingIfNeeded: rng.next() % UInt64(V)) }
            let job = Job(.feed(.waiting(.tokens(tokens), createdStream: false)), client: 0, topK: 5) { progress.finished($0) }
            do {
                try engine.core.submit(job, to: "bench-\(s)", create: true)
            } catch {
                preconditionFailure("benchmark stream \(s) was refused: \(error)")
            }
        }
        let start = ProcessInfo.processInfo.systemUptime
        engine.start()
        let failure = progress.waitForAll()
        let elapsed = ProcessInfo.processInfo.systemUptime - start
        engine.shutdown()
        precondition(failure == nil, "benchmark feed failed: \(failure!)")
        return Double(streams * steps) / elapsed
    }
}

/// Counts the benchmark's finished feeds; the caller blocks until all are in.
private final class BenchmarkProgress: @unchecked Sendable {
    private let condition = NSCondition()
    private var remaining: Int
    private var failure: EngineError?

    init(remaining: Int) { self.remaining = remaining }

    func finished(_ result: Result<JobOutput, EngineError>) {
        condition.lock()
        defer { condition.unlock() }
        if case .failure(let error) = result { failure = error }
        remaining -= 1
        condition.broadcast()
    }

    /// Waits for every feed; returns the last failure, if any.
    func waitForAll() -> EngineError? {
        condition.lock()
        defer { condition.unlock() }
        while remaining > 0 { condition.wait() }
        return failure
    }
}
