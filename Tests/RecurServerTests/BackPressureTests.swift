import Foundation
@testable import RecurServer
import RecurTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A client that sends and never reads must stall only itself.
final class BackPressureTests: XCTestCase {
    func testClientThatNeverReads_isBackPressuredWhileOthersAreServed() throws {
        let harness = try ServerHarness()
        defer { XCTAssertNil(harness.stop()) }
        let engine = harness.engine
        let bystander = try harness.connect()
        _ = try bystander.feed("warm up", stream: "bystander")
        let residentBefore = residentBytes()

        let flooder = try harness.connect()
        flooder.setNonBlocking()
        let line = Array((#"{"op":"feed","stream":"flood","k":5,"text":""# + String(repeating: "abcdefghij", count: 200) + "\"}\n").utf8)
        let wanted = 50 << 20
        var sent = 0
        var lastProgress = Date()
        var offset = 0
        // Push until the socket has refused more for a whole second (or everything went through).
        while sent < wanted, Date().timeIntervalSince(lastProgress) < 1 {
            let n = line.withUnsafeBytes { send(flooder.fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                sent += n
                offset = (offset + n) % line.count
                lastProgress = Date()
            } else {
                XCTAssertTrue(errno == EAGAIN || errno == EWOULDBLOCK, "send failed: errno \(errno)")
                usleep(10_000)
            }
        }
        XCTAssertLessThan(sent, 16 << 20, "the daemon kept reading from a client that never reads (\(sent) bytes taken)")

        // The flood is stalled: the engine's token count stops moving.
        let before = try blocking { await engine.stats().tokens }
        usleep(500_000)  // not a wait: the time a daemon that kept reading would have to absorb more
        let after = try blocking { await engine.stats().tokens }
        XCTAssertEqual(before, after, "the daemon kept absorbing the flooder's text although its replies are not read")

        // Others are served as usual.
        let started = Date()
        let (events, reply) = try bystander.feed("!", stream: "bystander")
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(reply["done"], .bool(true))
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)

        let growth = residentBytes() - residentBefore
        XCTAssertLessThan(growth, 100 << 20, "resident memory grew by \(growth >> 20) MiB during the flood")
        print("back-pressure: the flooder got \(sent) bytes in; resident memory grew by \(growth >> 10) KiB")

        // Closing the flooder frees its connection.
        let server = harness.server
        flooder.close()
        try eventually("the flooder's connection cleaned up (open connections)", { server.openConnections }, until: { $0 == 1 })
    }
}
