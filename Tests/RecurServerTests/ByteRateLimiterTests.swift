@testable import RecurServer
import XCTest

/// The per-user token bucket behind --max-bytes-per-second-per-user, on a fake clock.
final class ByteRateLimiterTests: XCTestCase {
    func test_reserve_allowsOneSecondOfBurst_thenMakesTheDebtWait() {
        let limiter = ByteRateLimiter(bytesPerSecond: 1000)
        XCTAssertEqual(limiter.reserve(600, for: 7, at: 10), 0)
        XCTAssertEqual(limiter.reserve(400, for: 7, at: 10), 0)
        XCTAssertEqual(limiter.reserve(500, for: 7, at: 10), 0.5, accuracy: 1e-9)
        // Half a second later the debt is paid; the next 250 bytes wait a quarter second.
        XCTAssertEqual(limiter.reserve(250, for: 7, at: 10.5), 0.25, accuracy: 1e-9)
    }

    func test_reserve_refillsAtTheRate_butNeverBeyondOneSecond() {
        let limiter = ByteRateLimiter(bytesPerSecond: 100)
        XCTAssertEqual(limiter.reserve(100, for: 1, at: 0), 0)
        XCTAssertEqual(limiter.reserve(100, for: 1, at: 1000), 0, "a long idle time refills the bucket")
        XCTAssertEqual(limiter.reserve(150, for: 1, at: 1000), 1.5, accuracy: 1e-9, "but only to one second's worth")
    }

    func test_reserve_keepsOneBucketPerUser() {
        let limiter = ByteRateLimiter(bytesPerSecond: 100)
        XCTAssertEqual(limiter.reserve(300, for: 1, at: 0), 2, accuracy: 1e-9)
        XCTAssertEqual(limiter.reserve(100, for: 2, at: 0), 0, "another user's debt does not slow this one")
        XCTAssertEqual(limiter.reserve(100, for: 1, at: 0), 3, accuracy: 1e-9, "a user's connections share its debt")
    }
}
