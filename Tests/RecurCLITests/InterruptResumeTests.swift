import Foundation
import RecurCore
import RecurTestSupport
import XCTest

final class InterruptResumeTests: XCTestCase {
    private let arguments = ["train", "corpus.txt", "--out", "run.safetensors", "--hidden", "32", "--layers", "1",
                             "--embedding", "16", "--seq", "20", "--batch", "8", "--time-limit", "30",
                             "--report-every", "0.1", "--eval-every", "100"]

    /// Waits until the metrics log has at least `count` lines (training is under way).
    private func waitForReports(_ url: URL, count: Int, timeout: Double = 20) throws {
        try eventually("\(count) training reports in \(url.lastPathComponent)", timeout: .seconds(timeout),
                       { (try? String(contentsOf: url, encoding: .utf8))?.split(separator: "\n").count ?? 0 },
                       until: { $0 >= count })
    }

    func test_train_sigint_savesResumableCheckpointAndResumeContinuesFromIt() throws {
        let dir = try makeWorkDirectory(self)
        try makeCorpus().write(to: dir.appendingPathComponent("corpus.txt"), atomically: true, encoding: .utf8)
        let metricsURL = dir.appendingPathComponent("run.safetensors.metrics.jsonl")

        let running = try Recur.start(arguments, in: dir)
        try waitForReports(metricsURL, count: 2)
        running.process.interrupt()  // SIGINT, as Ctrl-C
        let interrupted = try running.wait(timeout: Recur.timeout)
        XCTAssertEqual(interrupted.status, 130, interrupted.stderr)
        XCTAssertEqual(running.process.terminationReason, .exit, "recur exits by itself, not killed by the signal")
        XCTAssertTrue(interrupted.stderr.contains("--resume run.safetensors"), interrupted.stderr)

        let model = try Model(contentsOf: dir.appendingPathComponent("run.safetensors").path)
        XCTAssertEqual(model.provenance["interrupted"], "SIGINT")
        let checkpoint = try TrainingCheckpoint(contentsOf: dir.appendingPathComponent("run.safetensors.optim.safetensors").path)
        XCTAssertEqual(checkpoint.optimizerKind, .adam)
        XCTAssertEqual(checkpoint.m.count, model.parameters.count)
        XCTAssertEqual(checkpoint.v.count, model.parameters.count)
        XCTAssertGreaterThan(checkpoint.step, 0)
        XCTAssertEqual(checkpoint.progress.tokens, checkpoint.step * 20 * 8)
        XCTAssertEqual(model.provenance["tokens"], String(checkpoint.progress.tokens))
        XCTAssertEqual(checkpoint.options.timeLimit, 30)
        XCTAssertEqual(checkpoint.options.batchSize, 8)
        let before = try jsonLines(metricsURL)
        let lastBefore = try XCTUnwrap(before.last)
        XCTAssertEqual(lastBefore["tokens"] as? Int, checkpoint.progress.tokens)

        // The documented continuation: the same command plus --resume; a horizon half an epoch
        // past the interruption (wherever a fast or slow machine got to) ends it.
        let stoppedAt = try XCTUnwrap(lastBefore["epoch"] as? Double)
        let resumed = try Recur.run(arguments + ["--resume", "run.safetensors", "--epochs", String(stoppedAt + 0.5)], in: dir)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let after = try jsonLines(metricsURL)
        guard after.count > before.count else {
            return XCTFail("a resumed run appends to the metrics log (\(before.count) lines before, \(after.count) after)")
        }
        let firstNew = after[before.count]
        XCTAssertGreaterThan(try XCTUnwrap(firstNew["tokens"] as? Int), checkpoint.progress.tokens)
        XCTAssertGreaterThan(try XCTUnwrap(firstNew["elapsed_s"] as? Double), checkpoint.progress.elapsed)
        XCTAssertGreaterThan(try XCTUnwrap(firstNew["epoch"] as? Double), try XCTUnwrap(lastBefore["epoch"] as? Double))

        let continued = try TrainingCheckpoint(contentsOf: dir.appendingPathComponent("run.safetensors.optim.safetensors").path)
        XCTAssertEqual(continued.progress.tokens, continued.step * 20 * 8, "step and tokens continue together")
        XCTAssertGreaterThan(continued.step, checkpoint.step)
        let resumedModel = try Model(contentsOf: dir.appendingPathComponent("run.safetensors").path)
        XCTAssertNil(resumedModel.provenance["interrupted"])
        XCTAssertEqual(resumedModel.provenance["resumed_from"], "run.safetensors")
    }
}
