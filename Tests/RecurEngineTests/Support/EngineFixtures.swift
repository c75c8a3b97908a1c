import Foundation
import RecurCore
import RecurTestSupport
import XCTest
@testable import RecurEngine

/// Tiny models and the offline reference every engine result is compared with.
enum Fixtures {
    /// ASCII, two-byte (é, ß), three-byte (漢, €) and four-byte (😀) characters.
    static let alphabet = "abcdefghij klmnop\n.,é漢€😀ß"

    static func charVocabulary(policy: UnknownPolicy = .error) -> Vocabulary {
        try! Vocabulary.build(kind: .char, corpus: alphabet, unknownPolicy: policy)
    }

    static func model(cell: CellKind = .lstm, layers: Int = 2, hidden: Int = 24, embedding: Int = 8,
                      vocabulary: Vocabulary = charVocabulary(), seed: UInt64 = 7) -> Model {
        let config = ModelConfig(cell: cell, vocabularySize: vocabulary.count, hiddenSize: hidden,
                                 layers: layers, embeddingSize: embedding)
        return Model.random(config: config, vocabulary: vocabulary, seed: seed)
    }

    /// A word model over lowercase words, spaces and punctuation (replace policy, as by default).
    static func wordModel() -> Model {
        let corpus = "the cat sat on the mat . a dog ran to the cat , and the dog sat ."
        let vocabulary = try! Vocabulary.build(kind: .word, corpus: corpus, unknownPolicy: .replace)
        return model(cell: .gru, layers: 1, hidden: 16, embedding: 6, vocabulary: vocabulary)
    }

    static func randomText(_ rng: inout TestRNG, characters: Int) -> String {
        let scalars = Array(alphabet.unicodeScalars)
        var view = String.UnicodeScalarView()
        for _ in 0..<characters { view.append(scalars[rng.below(scalars.count)]) }
        return String(view)
    }

    /// Cuts bytes at random places (chunks of 0 to 12 bytes, so inside characters too).
    static func randomChunks(_ bytes: [UInt8], _ rng: inout TestRNG) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var i = 0
        while i < bytes.count {
            let n = min(rng.below(13), bytes.count - i)
            chunks.append(Array(bytes[i..<(i + n)]))
            i += n
        }
        return chunks
    }

    /// What `recur eval --per-token` computes: log p of tokens 2...n (index = offset - 1).
    static func offlineLogprobs(_ model: Model, _ tokens: [Int32]) -> [Float?] {
        var out = [Float?](repeating: nil, count: tokens.count)
        _ = Evaluator(model: model).score(tokens) { offset, lp in out[offset - 1] = lp }
        return out
    }

    /// The top-k after each token, stepping one stream alone.
    static func offlineTopK(_ model: Model, _ tokens: [Int32], k: Int) -> [[TokenProbability]] {
        let stepper = Stepper(model: model, maxBatch: 1)
        let state = StateBatch(config: model.config, batch: 1)
        let V = model.config.vocabularySize
        let logProbs = UnsafeMutablePointer<Float>.allocate(capacity: V)
        defer { logProbs.deallocate() }
        var out: [[TokenProbability]] = []
        for var t in tokens {
            let logits = withUnsafePointer(to: &t) { stepper.step(tokens: UnsafeBufferPointer(start: $0, count: 1), state: state) }
            logSoftmax(logits, count: V, into: logProbs)
            out.append(topK(logProbs, count: V, k: k))
        }
        return out
    }

    /// Greedy continuation of `tokens` by `count`: argmax of the log-softmax, ties to the lower id.
    static func offlineGreedy(_ model: Model, after tokens: [Int32], count: Int) -> [Int32] {
        let stepper = Stepper(model: model, maxBatch: 1)
        let state = StateBatch(config: model.config, batch: 1)
        let V = model.config.vocabularySize
        let logProbs = UnsafeMutablePointer<Float>.allocate(capacity: V)
        defer { logProbs.deallocate() }
        var out: [Int32] = []
        var input = tokens
        for _ in 0..<count {
            for var t in input {
                let logits = withUnsafePointer(to: &t) { stepper.step(tokens: UnsafeBufferPointer(start: $0, count: 1), state: state) }
                logSoftmax(logits, count: V, into: logProbs)
            }
            var best = 0
            for j in 1..<V where logProbs[j] > logProbs[best] { best = j }
            out.append(Int32(best))
            input = [Int32(best)]
        }
        return out
    }

    /// Asserts that a stream's events are exactly the offline tokens and logprobs, printing the
    /// largest difference when they are not.
    static func assertMatchesOffline(_ events: [TokenEvent], model: Model, tokens: [Int32], stream: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(events.map(\.token), tokens, "tokens of \(stream)", file: file, line: line)
        XCTAssertEqual(events.map(\.offset), (0..<tokens.count).map { $0 + 1 },
                       "offsets of \(stream)", file: file, line: line)
        let expected = offlineLogprobs(model, tokens)
        let got = events.map(\.logprob)
        guard got != expected else { return }
        var maxDifference: Float = 0
        for (a, b) in zip(got, expected) {
            if let a, let b { maxDifference = max(maxDifference, abs(a - b)) } else if (a == nil) != (b == nil) { maxDifference = .infinity }
        }
        XCTFail("logprobs of \(stream) differ from Evaluator (\(got.count) vs \(expected.count) tokens, max difference \(maxDifference))",
                file: file, line: line)
    }
}

/// Collects notices from the engine thread.
final class NoticeRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var received: [(StreamNotice, [ClientID])] = []

    func record(_ notice: StreamNotice, _ clients: [ClientID]) {
        lock.lock()
        received.append((notice, clients))
        lock.unlock()
    }

    var notices: [(StreamNotice, [ClientID])] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    /// Waits up to `timeout` seconds for `count` notices (`eventually`); returns those received,
    /// after recording a failure that lists them when fewer came.
    func wait(for count: Int, timeout: Double = 5, file: StaticString = #filePath, line: UInt = #line) async -> [(StreamNotice, [ClientID])] {
        let received = try? await eventually("\(count) notices", timeout: .seconds(timeout), file: file, line: line,
                                             { self.notices }, until: { $0.count >= count })
        return received ?? notices
    }
}

extension StreamEngine {
    /// A started engine that records its notices.
    static func started(model: Model, options: EngineOptions = .init(), store: (any StreamStore)? = nil,
                        notices: NoticeRecorder? = nil) -> StreamEngine {
        let engine = StreamEngine(model: model, options: options, store: store)
        if let notices { engine.setNoticeHandler { notices.record($0, $1) } }
        engine.start()
        return engine
    }

    /// Feeds text in the given chunks, one request after the other, collecting the events.
    func feed(stream: String, chunks: [[UInt8]], topK: Int? = nil, client: ClientID = 1) async throws(EngineError) -> [TokenEvent] {
        var events: [TokenEvent] = []
        for chunk in chunks { events += try await feed(stream: stream, text: chunk, topK: topK, client: client) }
        return events
    }

    /// Waits (`eventually`) until at least `count` requests are queued on `stream`.
    func waitUntilQueued(_ count: Int, on stream: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        try await eventually("\(count) requests queued on '\(stream)'", file: file, line: line,
                             { self.queuedJobs(on: stream) }, until: { $0 >= count })
    }

    /// Requests queued on a stream, including the running one (tests only).
    func queuedJobs(on stream: String) -> Int {
        core.lock.lock()
        defer { core.lock.unlock() }
        return core.registry[stream]?.jobs.count ?? 0
    }
}

/// Expects `body` to throw exactly `expected`.
func assertThrows<T>(_ expected: EngineError, file: StaticString = #filePath, line: UInt = #line,
                     _ body: () async throws -> T) async {
    do {
        _ = try await body()
        XCTFail("no error; expected \(expected)", file: file, line: line)
    } catch {
        XCTAssertEqual(error as? EngineError, expected, file: file, line: line)
    }
}

/// Expects `body` to throw an engine error of `kind`; returns it.
@discardableResult
func assertThrowsKind<T>(_ kind: EngineError.Kind, file: StaticString = #filePath, line: UInt = #line,
                         _ body: () async throws -> T) async -> EngineError? {
    do {
        _ = try await body()
        XCTFail("no error; expected \(kind)", file: file, line: line)
        return nil
    } catch {
        let engineError = error as? EngineError
        XCTAssertEqual(engineError?.kind, kind, "\(error)", file: file, line: line)
        return engineError
    }
}
