import ArgumentParser
import Foundation
import RecurCore
import RecurEngine
import RecurStore

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
    @Option(help: "The weights' number format for single, batched, inference and engine (fp32, bf16, int8); training is fp32.") var precision = "fp32"
    @Option(help: "recurd's socket, for --only latency or clients (start it with the same model first).") var socket: String?
    @Option(help: "--only latency: feed this stream (default: a new stream named at random), e.g. one a live-view watcher is attached to.") var stream: String?
    @Option(help: "Concurrent clients for --only clients.") var clients = 1000
    @Option(help: "Feeds each client sends (--only latency: feeds of one character).") var feeds = 20
    @Option(help: "What to measure: all, single, batched, inference (single and batched), engine (the daemon's engine stepping --batch streams in process), latency (one client over --socket, one character per feed), clients (--clients clients over --socket), train, gemm (the training GEMM shapes on the current backend; RECUR_BLAS=dnnl|openblas picks it), peak (the machine's sgemm rate on the batched step's shape), or memory (resident memory while --streams streams are created, at most --resident in memory, evicted ones to --state-dir).") var only = "all"
    @Option(help: "--only memory: streams created.") var streams = 100_000
    @Option(help: "--only memory: resident-stream bound (without --state-dir it should be at least --streams).") var resident = 1000
    @Option(help: "--only memory: state directory for evicted streams (the store); none keeps everything in memory.") var stateDir: String?
    @Option(help: "--only memory: the store's durability (strict, batched, off).") var durability = "strict"

    func run() throws {
        let config = ModelConfig(cell: cell, vocabularySize: vocab, hiddenSize: hidden, layers: layers, embeddingSize: hidden)
        let vocabulary = Vocabulary(kind: .byte, tokens: (0..<vocab).map(String.init), unknownPolicy: .error)
        let model = Model.random(config: config, vocabulary: Vocabulary(kind: .char, tokens: vocabulary.tokens.sorted(by: Vocabulary.scalarOrder), unknownPolicy: .error), seed: 0)
        let backend = GemmBackend.current
        guard let precision = Precision(rawValue: precision) else {
            throw ValidationError("--precision must be one of \(Precision.allCases.map(\.rawValue).joined(separator: ", ")), not '\(self.precision)'")
        }
        var result: [String: Any] = ["cell": cell.rawValue, "hidden": hidden, "layers": layers, "vocab": vocab,
                                     "threads": GemmBackend.threads, "blas": backend.rawValue, "precision": precision.rawValue,
                                     "cpu": KernelInfo.cpuModel, "fp32_path": KernelInfo.fp32Path,
                                     "bf16_int8_path": KernelInfo.reducedPrecisionPath]
        let clock = ContinuousClock()
        if only == "memory" {
            guard let mode = Durability(rawValue: durability) else { throw ValidationError("--durability must be strict, batched or off") }
            let rows = try StoreMemory.measure(model: model, streams: streams, resident: resident, stateDirectory: stateDir, durability: mode)
            for row in rows {
                print("{\"streams\":\(row.streams),\"resident_streams\":\(row.residentStreams),\"rss_mib\":\(String(format: "%.1f", row.rssMiB)),\"seconds\":\(String(format: "%.2f", row.seconds)),\"store\":\(stateDir == nil ? "false" : "true")}")
            }
            return
        }
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

        if only == "all" || only == "single" || only == "inference" {
            // One stream, one token per step, log-softmax and top-5 after every token, the next
            // input being the most probable token (as the peer does).
            let stepper = Stepper(model: model, maxBatch: 1, precision: precision)
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
        if only == "all" || only == "batched" || only == "inference" {
            let stepper = Stepper(model: model, maxBatch: batch, precision: precision)
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
        if only == "engine" {
            var options = EngineOptions()
            options.precision = precision
            let engine = StreamEngine(model: model, options: options)
            result["engine_B\(batch)_tokens_per_s"] = engine.benchmarkSteps(streams: batch, steps: 50)
        }
        if only == "latency" || only == "clients" {
            guard let socket else { throw ValidationError("--only \(only) needs --socket PATH of a running recurd") }
            let text = Array(Self.sampleText.utf8)
            let clients = DaemonClients(socketPath: socket, text: text)
            if only == "latency" {
                _ = try clients.run(clients: 1, feeds: 200, chunk: 1, k: 5, stream: stream)  // warm-up
                let r = try clients.run(clients: 1, feeds: tokens, chunk: 1, k: 5, stream: stream)
                let sorted = r.latencies.sorted()
                result["socket_feed_1token_p50_us"] = sorted[sorted.count / 2]
                result["socket_feed_1token_p99_us"] = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
                result["errors"] = r.errors
            } else {
                let r = try clients.run(clients: self.clients, feeds: feeds, chunk: 50, k: 5)
                result["clients"] = self.clients
                result["clients_tokens"] = r.tokens
                result["clients_tokens_per_s"] = Double(r.tokens) / r.seconds
                result["clients_errors"] = r.errors
                result["clients_disconnects"] = r.disconnects
                let sorted = r.latencies.sorted()
                result["clients_feed_p50_ms"] = sorted[sorted.count / 2] / 1000
            }
        }
        if only == "all" || only == "batched" || only == "inference" || only == "peak" {
            // The multiply-adds of one token's step (every layer's input and recurrent products
            // and the output layer), and the machine's sgemm rate on the batched step's largest
            // shape (1000 rows × G·H × (I + H)) with the training backend on every thread: the
            // yardstick for the batched figure (GFLOP/s = tokens/s × step_flops_per_token).
            let GH = cell.gateCount * hidden
            result["step_flops_per_token"] = 2 * (layers * GH * 2 * hidden + vocab * hidden)
            let M = 1000, N = GH, K = 2 * hidden
            let a = FloatBuffer(M * K), b = FloatBuffer(K * N), c = FloatBuffer(M * N)
            for i in 0..<a.count { a[i] = Float(i % 7) * 0.01 }
            for i in 0..<b.count { b[i] = Float(i % 5) * 0.01 }
            sgemm(m: M, n: N, k: K, a: a.p, lda: K, b: b.p, ldb: N, c: c.p, ldc: N)
            var best = Double.infinity
            for _ in 0..<5 { best = min(best, seconds(clock.measure { sgemm(m: M, n: N, k: K, a: a.p, lda: K, b: b.p, ldb: N, c: c.p, ldc: N) })) }
            result["sgemm_gflops_\(M)x\(N)x\(K)"] = 2 * Double(M * N * K) / best / 1e9
        }
        if only == "gemm" {
            // The GEMMs of one training chunk of LSTM H=256 (B=32, T=100, N=3200): µs per call.
            let big = FloatBuffer(3200 * 1024), w = FloatBuffer(1024 * 3200), c = FloatBuffer(3200 * 1024)
            for i in 0..<big.count { big[i] = Float(i % 7) * 0.1; w[i] = Float(i % 5) * 0.1 }
            func time(_ label: String, _ reps: Int, _ body: () -> Void) {
                body()
                var best = Double.infinity
                for _ in 0..<3 { best = min(best, seconds(clock.measure { for _ in 0..<reps { body() } }) / Double(reps)) }
                result["gemm_us_" + label] = best * 1e6
            }
            // The shape training uses for a weight gradient: d Wᵀ, then added transposed.
            time("dWT_256x1024x3200_transA", 5) { sgemm(transA: true, m: 256, n: 1024, k: 3200, a: big.p, lda: 256, b: w.p, ldb: 1024, c: c.p, ldc: 1024) }
            time("step_32x1024x256", 200) { sgemm(m: 32, n: 1024, k: 256, a: big.p, lda: 256, b: w.p, ldb: 1024, beta: 1, c: c.p, ldc: 1024) }
            time("step_32x1024x256_transB", 200) { sgemm(transB: true, m: 32, n: 1024, k: 256, a: big.p, lda: 256, b: w.p, ldb: 256, beta: 1, c: c.p, ldc: 1024) }
            time("step_back_32x256x1024", 200) { sgemm(m: 32, n: 256, k: 1024, a: big.p, lda: 1024, b: w.p, ldb: 256, c: c.p, ldc: 256) }
            time("input_3200x1024x256_transB", 5) { sgemm(transB: true, m: 3200, n: 1024, k: 256, a: big.p, lda: 256, b: w.p, ldb: 256, beta: 1, c: c.p, ldc: 1024) }
            time("dW_1024x256x3200_transA", 5) { sgemm(transA: true, m: 1024, n: 256, k: 3200, a: big.p, lda: 1024, b: w.p, ldb: 256, beta: 1, c: c.p, ldc: 256) }
            time("dX_3200x256x1024", 5) { sgemm(m: 3200, n: 256, k: 1024, a: big.p, lda: 1024, b: w.p, ldb: 256, c: c.p, ldc: 256) }
        }
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

extension CellKind: ExpressibleByArgument {}

extension RecurBench {
    /// Text the daemon benchmarks feed (every character is in the Shakespeare model's vocabulary).
    static let sampleText = """
        HAMLET:
        To be, or not to be, that is the question:
        Whether 'tis nobler in the mind to suffer
        The slings and arrows of outrageous fortune,
        Or to take arms against a sea of troubles
        And by opposing end them. To die: to sleep;
        No more; and by a sleep to say we end
        The heart-ache and the thousand natural shocks
        That flesh is heir to, 'tis a consummation
        Devoutly to be wish'd.

        """
}
