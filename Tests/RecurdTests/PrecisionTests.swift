import Foundation
import RecurCore
import RecurTestSupport
import XCTest

/// `--precision` through the real binaries: `recurd --precision P` streams exactly what
/// `recur eval --precision P` computes, whatever the chunking and batching; the approximate
/// precisions say so at start; bad values are refused clearly; the model file is not touched;
/// and stored streams carry over a restart with another precision (the state is fp32 either way).
final class PrecisionTests: XCTestCase {
    private func sampleText() throws -> String {
        String(repeating: try String(contentsOf: Repository.hamlet, encoding: .utf8), count: 2)
    }

    func testFeed_withEachReducedPrecision_eventsEqualRecurEvalWithIt() throws {
        let text = try sampleText()
        let modelBytes = try Data(contentsOf: Repository.shakespeareModel)
        for precision in ["bf16", "int8"] {
            let daemon = try Daemon.start(self, arguments: ["--precision", precision])
            let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: text, in: daemon.directory,
                                                  arguments: ["--precision", precision])
            let fp32 = try recurEvalPerToken(model: Repository.shakespeareModel, text: text, in: daemon.directory)
            XCTAssertNotEqual(reference.map(\.logprob), fp32.map(\.logprob), "\(precision) gives other numbers than fp32")
            // Several clients at once, so that steps carry 1 to 6 streams in varying mixes.
            let clients = 6
            let seed = UInt64.random(in: 0...UInt64(UInt32.max))
            let results = feedConcurrently(daemon, text: text, clients: clients, seed: seed, chunkLengths: (5, 300))
            for (index, result) in results.enumerated() {
                switch result {
                case .success(let events): assertEventsMatchEval(events, reference, stream: "c\(index)")
                case .failure(let error): XCTFail("\(precision) client \(index) (seed \(seed)): \(error)")
                }
            }
            let result = try daemon.stop()
            XCTAssertTrue(result.stderr.contains("precision \(precision) is approximate"), "recurd warns: \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("precision \(precision) (kernels: "), "recurd logs the precision: \(result.stderr)")
        }
        XCTAssertEqual(try Data(contentsOf: Repository.shakespeareModel), modelBytes, "the model file stays as it was (fp32)")
    }

    func testEvalAndSample_withReducedPrecision_warnOnStderr_fp32DoesNot() throws {
        let directory = try makeWorkDirectory(self)
        let model = Repository.shakespeareModel.path
        for precision in ["bf16", "int8"] {
            let eval = try runRecur(["eval", model, Repository.hamlet.path, "--precision", precision], in: directory, timeout: 120)
            XCTAssertEqual(eval.status, 0, eval.stderr)
            XCTAssertTrue(eval.stderr.hasPrefix("recur: warning: precision \(precision) is approximate"), eval.stderr)
            XCTAssertTrue(eval.stdout.contains("nats/token"), eval.stdout)
            let sample = try runRecur(["sample", model, "--precision", precision, "--length", "20", "--seed", "1"], in: directory, timeout: 60)
            XCTAssertEqual(sample.status, 0, sample.stderr)
            XCTAssertTrue(sample.stderr.contains("precision \(precision) is approximate"), sample.stderr)
        }
        let plain = try runRecur(["eval", model, Repository.hamlet.path, "--precision", "fp32"], in: directory, timeout: 120)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(plain.stderr, "", "fp32 is exact: no warning")
    }

    func testBadPrecisionValues_areRefusedWithTheChoices() throws {
        let directory = try makeWorkDirectory(self)
        let model = Repository.shakespeareModel.path
        for bad in ["fp16", "INT4", ""] {
            let recurd = try runRecurd(["--model", model, "--stdin", "--precision", bad], in: directory)
            XCTAssertNotEqual(recurd.status, 0)
            XCTAssertTrue(recurd.stderr.contains("'fp32', 'bf16' or 'int8'"), "recurd --precision '\(bad)': \(recurd.stderr)")
            for command in [["eval", model, Repository.hamlet.path], ["sample", model]] {
                let recur = try runRecur(command + ["--precision", bad], in: directory)
                XCTAssertNotEqual(recur.status, 0)
                XCTAssertTrue(recur.stderr.contains("--precision") && recur.stderr.contains("'fp32', 'bf16' or 'int8'"),
                              "recur \(command[0]) --precision '\(bad)': \(recur.stderr)")
            }
        }
    }

    func testRestartWithAnotherPrecision_continuesStoredStreamsWithTheNewPrecisionsNumbers() throws {
        let directory = try makeWorkDirectory(self)
        let state = directory.appendingPathComponent("state").path
        let text = Array(try sampleText())
        let cut = 300
        let first = try Daemon.start(self, arguments: ["--state-dir", state, "--precision", "int8"], in: directory)
        let events1 = try first.connect().request(["op": "feed", "stream": "s", "text": String(text[..<cut])]).events
        try first.stop()
        let second = try Daemon.start(self, arguments: ["--state-dir", state, "--precision", "bf16"], in: directory)
        let events2 = try second.connect().request(["op": "feed", "stream": "s", "text": String(text[cut...])]).events
        try second.stop()
        XCTAssertEqual(events1.count, cut)
        XCTAssertEqual(events2.first?["offset"] as? Int, cut + 1, "the stream continues where it was, not from the start")

        // The same in process: int8 for the first part, then bf16 from that (fp32) state.
        let model = try Model(contentsOf: Repository.shakespeareModel.path)
        let tokens = try Tokenizer(model.vocabulary).encode(String(text))
        let V = model.config.vocabularySize
        let stateBatch = StateBatch(config: model.config, batch: 1)
        var expected: [Float] = []
        var logProbs = [Float](repeating: 0, count: V)
        for (precision, range) in [(Precision.int8, 0..<cut), (.bf16, cut..<tokens.count)] {
            let stepper = Stepper(model: model, maxBatch: 1, precision: precision)
            for i in range {
                if i > 0 { expected.append(logProbs[Int(tokens[i])]) }
                let logits = [tokens[i]].withUnsafeBufferPointer { stepper.step(tokens: $0, state: stateBatch) }
                logProbs.withUnsafeMutableBufferPointer { logSoftmax(logits, count: V, into: $0.baseAddress!) }
            }
        }
        let streamed = (events1 + events2).dropFirst().map { Protocol.logprob($0) }
        XCTAssertEqual(streamed.count, expected.count)
        XCTAssertEqual(streamed, expected.map { Optional($0) }, "int8 up to offset \(cut), then bf16 from the stored state")
    }
}
