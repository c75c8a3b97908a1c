import RecurCore
@testable import RecurServer
import RecurTestSupport
import XCTest

/// The issue's promise: whatever the chunking, interleaving and batching, every token's
/// log-probability equals what `recur eval --per-token` (the `Evaluator`) computes.
final class ConcurrentAgreementTests: XCTestCase {
    func testManyConcurrentClients_withRandomChunks_eachMatchTheEvaluatorExactly() throws {
        let harness = try ServerHarness()
        defer { XCTAssertNil(harness.stop()) }
        let clientCount = 12
        var rng = SeededGenerator(seed: 2024)
        struct Plan {
            var client: SocketClient
            var stream: String?
            var text: String
            var chunks: [String]
            var k: Int
        }
        var plans: [Plan] = []
        for i in 0..<clientCount {
            let text = TestModels.randomText(length: 200 + Int(rng.next() % 200), seed: UInt64(100 + i))
            var chunks: [String] = []
            var rest = Substring(text)
            while !rest.isEmpty {
                let size = 1 + Int(rng.next() % 40)
                chunks.append(String(rest.prefix(size)))
                rest = rest.dropFirst(size)
            }
            // Every third client uses its private stream.
            plans.append(Plan(client: try harness.connect(), stream: i % 3 == 2 ? nil : "agree-\(i)",
                              text: text, chunks: chunks, k: Int(rng.next() % 6)))
        }
        // Round-robin, without waiting for replies: every connection has feeds in flight at once.
        let rounds = plans.map(\.chunks.count).max()!
        for round in 0..<rounds {
            for plan in plans where round < plan.chunks.count {
                var request = #"{"op":"feed","text":\#(JSONValue.string(plan.chunks[round]).rendered),"k":\#(plan.k),"id":\#(round)"#
                if let stream = plan.stream { request += #","stream":"\#(stream)""# }
                try plan.client.send(request + "}")
            }
        }
        for (i, plan) in plans.enumerated() {
            var events: [JSONValue] = []
            var dones = 0
            while dones < plan.chunks.count {
                let line = try plan.client.readJSON()
                XCTAssertNil(line["error"], "client \(i): \(line.rendered)")
                if line["done"] != nil {
                    XCTAssertEqual(line["id"]?.intValue, dones, "client \(i): replies out of order")
                    dones += 1
                } else {
                    events.append(line)
                }
            }
            let reference = TestModels.reference(plan.text, model: TestModels.charLSTM)
            XCTAssertEqual(events.count, reference.count, "client \(i)")
            var worst: Float = 0
            var mismatches = 0
            for (j, event) in events.enumerated() where j < reference.count {
                XCTAssertEqual(event["offset"]?.intValue, j + 1, "client \(i)")
                XCTAssertEqual(event["token"]?.stringValue, TestModels.charLSTM.vocabulary.tokens[Int(reference[j].token)], "client \(i) offset \(j + 1)")
                let got = event["logprob"]?.doubleValue.map(Float.init)
                if got != reference[j].logprob {
                    mismatches += 1
                    if let got, let want = reference[j].logprob { worst = max(worst, abs(got - want)) }
                }
                if case .array(let next)? = event["next"] { XCTAssertEqual(next.count, plan.k) }
            }
            XCTAssertEqual(mismatches, 0, "client \(i): \(mismatches) log-probabilities differ from the Evaluator (max difference \(worst))")
        }
        let engine = harness.engine
        let stats = try blocking { await engine.stats() }
        print("agreement: \(stats.tokens) tokens in \(stats.steps) steps, mean batch \(stats.meanBatch)")
    }
}
