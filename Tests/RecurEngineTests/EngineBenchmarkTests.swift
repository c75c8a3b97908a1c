import RecurCore
import XCTest
@testable import RecurEngine

final class EngineBenchmarkTests: XCTestCase {
    func test_benchmarkSteps_reportsPositiveRate_andLeavesEngineUntouched() async throws {
        let model = Fixtures.model(layers: 1, hidden: 16)
        let engine = StreamEngine.started(model: model)
        defer { engine.shutdown() }
        let rate = engine.benchmarkSteps(streams: 50, steps: 4)
        XCTAssertGreaterThan(rate, 0)
        let streams = await engine.stats().streams
        XCTAssertEqual(streams, 0)
    }
}
