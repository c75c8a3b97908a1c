import Foundation
import RecurCore
import RecurEngine
import RecurStore
import XCTest

/// Tiny models, temporary state directories and the offline reference for the tests of both
/// stores (RecurStoreTests, RecurClusterTests).
public enum StoreFixtures {
    public static let alphabet = "abcdefghij klmnop\n.,é漢€😀ß"

    public static func vocabulary() -> Vocabulary {
        try! Vocabulary.build(kind: .char, corpus: alphabet, unknownPolicy: .error)
    }

    public static func model(hidden: Int = 16, seed: UInt64 = 7, vocabulary: Vocabulary = vocabulary()) -> Model {
        let config = ModelConfig(cell: .lstm, vocabularySize: vocabulary.count, hiddenSize: hidden, layers: 2, embeddingSize: 8)
        return Model.random(config: config, vocabulary: vocabulary, seed: seed)
    }

    /// A fresh directory under the temporary directory, removed after the test; the state
    /// directory itself is `DIR/state` (not created, so the store creates it).
    public static func stateDirectory(_ test: XCTestCase) throws -> String {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("recur-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: base) }
        return base.appendingPathComponent("state").path
    }

    public static func store(_ directory: String, _ model: Model, durability: Durability = .strict,
                      replayHistory: Int = 10_000) throws -> StateStore {
        var options = StateStore.Options()
        options.durability = durability
        options.replayHistory = replayHistory
        options.lockWait = 0
        return try StateStore(directory: directory, fingerprint: ModelFingerprint(of: model), options: options)
    }

    public static func tokens(_ text: String, _ model: Model) -> [Int32] {
        try! Tokenizer(model.vocabulary).encode(text)
    }

    /// What `recur eval --per-token` computes after `tokens`: the logprob of each next token
    /// candidate, i.e. the log-softmax after the last one.
    public static func offlineLogProbs(_ model: Model, _ tokens: [Int32]) -> [Float] {
        let stepper = Stepper(model: model, maxBatch: 1)
        let state = StateBatch(config: model.config, batch: 1)
        let V = model.config.vocabularySize
        var out = [Float](repeating: 0, count: V)
        for var t in tokens {
            let logits = withUnsafePointer(to: &t) { stepper.step(tokens: UnsafeBufferPointer(start: $0, count: 1), state: state) }
            out.withUnsafeMutableBufferPointer { logSoftmax(logits, count: V, into: $0.baseAddress!) }
        }
        return out
    }

    /// Feeds `next` to the stream and checks its event against the offline computation over
    /// `tokens + [next]`: the logprob the stream gave `next` and the top-5 after it, bit for bit.
    public static func assertContinuationEqualsOffline(_ engine: StreamEngine, stream: String, tokens: [Int32], next: Int32,
                                                model: Model, file: StaticString = #filePath, line: UInt = #line) async throws {
        let events = try await engine.feed(stream: stream, tokens: [next], topK: 5, client: 1)
        let before = offlineLogProbs(model, tokens)
        let after = offlineLogProbs(model, tokens + [next])
        let expectedNext = after.withUnsafeBufferPointer { topK($0.baseAddress!, count: after.count, k: 5) }
        XCTAssertEqual(events.count, 1, file: file, line: line)
        XCTAssertEqual(events.first?.offset, tokens.count + 1, "offset of '\(stream)'", file: file, line: line)
        XCTAssertEqual(events.first?.logprob, tokens.isEmpty ? nil : before[Int(next)], "logprob of '\(stream)'", file: file, line: line)
        XCTAssertEqual(events.first?.next, expectedNext, "top-5 of '\(stream)'", file: file, line: line)
    }
}
