import ArgumentParser
import Foundation
import RecurCore

/// recur's side of the PyTorch comparison (shared/peers/torch_rnn_bench.py measures the same
/// three things in the same shapes). scripts/bench.sh runs both, interleaved, and prints ratios.
@main
struct RecurBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recur-bench",
        abstract: "Measure single-stream, batched and training throughput; print one JSON line.")

    @Option(help: "Cell: rnn, gru or lstm.") var cell: CellKind = .lstm
    @Option(help: "Hidden size H (the embedding has the same width, as in the PyTorch peer).") var hidden = 256
    @Option(help: "Stacked layers.") var layers = 2
    @Option(help: "Vocabulary size V.") var vocab = 65
    @Option(help: "Streams stepped together in the batched measurement.") var batch = 1000
    @Option(help: "Tokens fed to the single stream.") var tokens = 3000
    @Option(help: "Training batch B.") var trainBatch = 32
    @Option(help: "Training sequence length T.") var seq = 100
    @Option(help: "Training chunks timed.") var iterations = 20
    @Option(help: "What to measure: all, single, batched or train.") var only = "all"

    func run() throws {
        let config = ModelConfig(cell: cell, vocabularySize: vocab, hiddenSize: hidden, layers: layers, embeddingSize: hidden)
        let vocabulary = Vocabulary(kind: .byte, tokens: (0..<vocab).map(String.init), unknownPolicy: .error)
        let model = Model.random(config: config, vocabulary: Vocabulary(kind: .char, tokens: vocabulary.tokens.sorted(by: Vocabulary.scalarOrder), unknownPolicy: .error), seed: 0)
        let backend = GemmBackend.current
        var result: [String: Any] = ["cell": cell.rawValue, "hidden": hidden, "layers": layers, "vocab": vocab,
                                     "threads": GemmBackend.threads, "blas": backend.rawValue]
        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

        if only == "all" || only == "single" {
            // One stream, one token per step, log-softmax and top-5 after every token, the next
            // input being the most probable token (as the peer does).
            let stepper = Stepper(model: model, maxBatch: 1)
            let state = StateBatch(config: config, batch: 1)
            let logProbs = UnsafeMutablePointer<Float>.allocate(capacity: vocab)
            defer { logProbs.deallocate() }
            var token: Int32 = 0
            func one() {
                let logits = withUnsafePointer(to: &token) { stepper.step(tokens: UnsafeBufferPointer(start: $0, count: 1), state: state) }
                logSoftmax(logits, count: vocab, into: logProbs)
                token = topK(logProbs, count: vocab, k: 5)[0].token
            }
            for _ in 0..<200 { one() }
            let elapsed = clock.measure { for _ in 0..<tokens { one() } }
            result["single_stream_us_per_token"] = seconds(elapsed) / Double(tokens) * 1e6
        }
        if only == "all" || only == "batched" {
            let stepper = Stepper(model: model, maxBatch: batch)
            let state = StateBatch(config: config, batch: batch)
            var rng = SeededGenerator(seed: 1)
            let input = (0..<batch).map { _ in Int32(rng.next() % UInt64(vocab)) }
            let logProbs = UnsafeMutablePointer<Float>.allocate(capacity: vocab)
            defer { logProbs.deallocate() }
            func one() {
                let logits = input.withUnsafeBufferPointer { stepper.step(tokens: $0, state: state) }
                for b in 0..<batch {
                    logSoftmax(logits + b * vocab, count: vocab, into: logProbs)
                    _ = topK(logProbs, count: vocab, k: 5)
                }
            }
            for _ in 0..<5 { one() }
            let steps = 50
            let elapsed = clock.measure { for _ in 0..<steps { one() } }
            result["batched_B\(batch)_tokens_per_s"] = Double(batch * steps) / seconds(elapsed)
        }
        if only == "all" || only == "train" {
            var rng = SeededGenerator(seed: 2)
            let n = trainBatch * (seq * (iterations + 4) + 1) + 1
            let corpus = (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) }
            var options = TrainingOptions()
            options.batchSize = trainBatch
            options.sequenceLength = seq
            options.validationFraction = 0
            let trainer = try Trainer(model: model, corpus: corpus, options: options)
            for _ in 0..<3 { _ = trainer.step(elapsed: 0) }
            let elapsed = clock.measure { for _ in 0..<iterations { _ = trainer.step(elapsed: 0) } }
            result["train_tokens_per_s"] = Double(trainBatch * seq * iterations) / seconds(elapsed)
        }
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

extension CellKind: ExpressibleByArgument {}
