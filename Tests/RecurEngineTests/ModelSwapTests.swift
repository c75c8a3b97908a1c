import Foundation
import RecurCore
import RecurTestSupport
import XCTest
@testable import RecurEngine

/// `replaceModel` (reload) and the engine-thread heartbeat behind recurd's watchdog.
final class ModelSwapTests: XCTestCase {
    /// Log-probabilities and top-1 of `second` fed after `first`, switching models in between,
    /// stepping one stream alone: the reference for a swap between two feeds.
    private func offline(first: [Int32], on a: Model, then second: [Int32], on b: Model) -> [Float] {
        let V = a.config.vocabularySize
        let state = StateBatch(config: a.config, batch: 1)
        let logProbs = UnsafeMutablePointer<Float>.allocate(capacity: V)
        defer { logProbs.deallocate() }
        var out: [Float] = []
        for (stepper, tokens, record) in [(Stepper(model: a, maxBatch: 1), first, false), (Stepper(model: b, maxBatch: 1), second, true)] {
            for var t in tokens {
                if record { out.append(logProbs[Int(t)]) }
                let logits = withUnsafePointer(to: &t) { stepper.step(tokens: UnsafeBufferPointer(start: $0, count: 1), state: state) }
                logSoftmax(logits, count: V, into: logProbs)
            }
        }
        return out
    }

    func test_replaceModel_whenCompatible_streamContinuesOnNewModelWithItsState() async throws {
        let a = Fixtures.model(cell: .lstm, seed: 7), b = Fixtures.model(cell: .lstm, seed: 99)
        let engine = StreamEngine.started(model: a)
        defer { engine.shutdown() }
        let first = "abc def", second = "ghij klm"
        _ = try await engine.feed(stream: "s", text: Array(first.utf8), topK: 1, client: 1)
        try await engine.replaceModel(b)
        let events = try await engine.feed(stream: "s", text: Array(second.utf8), topK: 1, client: 1)
        let expected = offline(first: try a.vocabulary.encode(first), on: a, then: try b.vocabulary.encode(second), on: b)
        XCTAssertEqual(events.map(\.logprob), expected.map { Optional($0) })
        XCTAssertEqual(events.first?.offset, first.count + 1, "the stream kept its offset")
        XCTAssertEqual(engine.model.parameters, b.parameters)
        // Had the old model stayed, the second feed's scores would differ.
        XCTAssertNotEqual(expected, offline(first: try a.vocabulary.encode(first), on: a, then: try a.vocabulary.encode(second), on: a))
    }

    func test_replaceModel_whileStreamsFeed_noRequestFailsAndEveryStreamKeepsItsOffset() async throws {
        let a = Fixtures.model(seed: 1), b = Fixtures.model(seed: 2)
        let engine = StreamEngine.started(model: a)
        defer { engine.shutdown() }
        let text = Array(String(repeating: "abc def ghij ", count: 20).utf8)
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for s in 0..<8 {
                group.addTask {
                    var n = 0
                    for _ in 0..<5 { n += try await engine.feed(stream: "s\(s)", text: text, topK: 2, client: ClientID(s)).count }
                    return n
                }
            }
            group.addTask {
                for i in 0..<10 { try await engine.replaceModel(i % 2 == 0 ? b : a) }
                return 0
            }
            var total = 0
            for try await n in group { total += n }
            return total
        }
        XCTAssertEqual(counts, 8 * 5 * text.count)
        for s in 0..<8 { let info = try await engine.info(stream: "s\(s)"); XCTAssertEqual(info.offset, 5 * text.count) }
    }

    func test_replaceModel_whenStateShapeOrVocabularyDiffer_refusesAndOldModelServes() async throws {
        let a = Fixtures.model(cell: .lstm, hidden: 24)
        let engine = StreamEngine.started(model: a)
        defer { engine.shutdown() }
        let otherVocabulary = try Vocabulary.build(kind: .char, corpus: "xyz", unknownPolicy: .error)
        let candidates: [(Model, String)] = [
            (Fixtures.model(cell: .lstm, hidden: 32), "hidden width"),
            (Fixtures.model(cell: .gru, hidden: 24), "cell"),
            (Fixtures.model(cell: .lstm, layers: 1, hidden: 24), "layer count"),
            (Fixtures.model(cell: .lstm, hidden: 24, vocabulary: otherVocabulary), "vocabulary"),
        ]
        for (candidate, reason) in candidates {
            let error = await assertThrowsKind(.badValue) { try await engine.replaceModel(candidate) }
            XCTAssertTrue(error?.description.contains(reason) == true, "\(String(describing: error))")
        }
        let text = "abc def"
        let events = try await engine.feed(stream: "s", text: Array(text.utf8), topK: 1, client: 1)
        Fixtures.assertMatchesOffline(events, model: a, tokens: try a.vocabulary.encode(text), stream: "s")
    }

    func test_heartbeat_isAnsweredByRunningEngine_andNeverByHungOne() async throws {
        let running = StreamEngine.started(model: Fixtures.model(hidden: 8))
        defer { running.shutdown() }
        let answered = Answers()
        running.requestHeartbeat { answered.add() }
        try await eventually("the running engine answers a heartbeat", { answered.count }, until: { $0 == 1 })

        // Queued before the thread starts, the heartbeat and the hang are taken in the same turn:
        // once that heartbeat is answered, the thread has hung.
        let hung = StreamEngine(model: Fixtures.model(hidden: 8))
        let beforeHang = Answers(), afterHang = Answers()
        hung.requestHeartbeat { beforeHang.add() }
        hung.hangForTesting()
        hung.start()
        try await eventually("the engine takes the hang request", { beforeHang.count }, until: { $0 == 1 })
        hung.requestHeartbeat { afterHang.add() }
        // Nothing to wait for: this is the time a broken engine would have to answer.
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertEqual(afterHang.count, 0, "a hung engine thread must not answer a heartbeat")
        // The hung engine cannot be shut down any more (its thread sleeps for good): left as it is.
    }
}

private final class Answers: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return n }
}
