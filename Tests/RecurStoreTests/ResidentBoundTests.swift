import Foundation
import RecurCore
import RecurEngine
import RecurStore
import RecurStoreTestSupport
import XCTest

/// With a store, the resident bound holds however many streams are created, and nothing is lost.
final class ResidentBoundTests: XCTestCase {
    func test_hundredThousandStreams_residentBoundHolds_andEveryStreamComesBack() async throws {
        let model = StoreFixtures.model(hidden: 4)
        let store = try StoreFixtures.store(try StoreFixtures.stateDirectory(self), model, durability: .off)
        var options = EngineOptions()
        options.maxResidentStreams = 1000
        options.idleTimeout = nil
        let engine = StreamEngine(model: model, options: options, store: store)
        engine.start()
        defer { engine.shutdown(); store.close() }
        let total = 100_000, inFlight = 256
        let start = Date()
        var peakResident = 0
        try await withThrowingTaskGroup(of: Void.self) { group in
            for s in 0..<total {
                if s >= inFlight { try await group.next() }
                // Stream s absorbs the tokens of its number's digits ("s12" absorbs 1, 2).
                group.addTask { _ = try await engine.feed(stream: "s\(s)", tokens: Self.tokens(s), topK: 0, client: 1) }
                if s % 5000 == 0 { peakResident = max(peakResident, await engine.stats().streams) }
            }
            try await group.waitForAll()
        }
        let created = Date().timeIntervalSince(start)
        let resident = await engine.stats().streams
        XCTAssertLessThanOrEqual(max(peakResident, resident), 1000, "resident streams")
        XCTAssertEqual(store.currentStatistics().streams + resident, total, "every stream is in the store or resident (durability off logs nothing)")
        // Streams evicted long ago come back with exactly what they absorbed.
        for s in [0, 1, 777, 45_678, 99_999] {
            let info = try await engine.info(stream: "s\(s)")
            XCTAssertEqual(info.offset, Self.tokens(s).count, "s\(s)")
            try await StoreFixtures.assertContinuationEqualsOffline(engine, stream: "s\(s)", tokens: Self.tokens(s), next: 2, model: model)
        }
        print(String(format: "resident bound: %d streams created in %.1f s, at most %d resident (bound 1000)", total, created, max(peakResident, resident)))
    }

    private static func tokens(_ s: Int) -> [Int32] { String(s).utf8.map { Int32($0 - 48) } }
}
