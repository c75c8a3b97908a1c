import RecurSocketPath
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The socket path's one default and one limit, which the daemon and its clients share.
final class DaemonSocketPathTests: XCTestCase {
    func test_aPathOfTheLimitFits_oneByteMoreIsRefusedSayingByHowMuch() {
        let fits = "/" + String(repeating: "a", count: DaemonSocketPath.maximumBytes - 1)
        XCTAssertNil(DaemonSocketPath.lengthProblem(fits))
        let long = fits + "b"
        XCTAssertEqual(DaemonSocketPath.lengthProblem(long, named: "--socket path"),
                       "--socket path '\(long)' is 104 bytes long; Unix socket paths are limited to 103 (use a shorter directory, e.g. /run or /tmp)")
        // Bytes, not characters: 52 two-byte characters are 104 bytes.
        XCTAssertNotNil(DaemonSocketPath.lengthProblem("/" + String(repeating: "é", count: 52)))
    }

    func test_theLimitFitsThisSystemsSocketAddress_andAnAddressIsMadeUpToItOnly() {
        XCTAssertGreaterThanOrEqual(UnixSocketAddress.maxPathLength, DaemonSocketPath.maximumBytes)
        let fits = "/" + String(repeating: "a", count: UnixSocketAddress.maxPathLength - 1)
        XCTAssertEqual(UnixSocketAddress.withAddress(of: fits) { _, length in Int(length) }, MemoryLayout<sockaddr_un>.size)
        XCTAssertNil(UnixSocketAddress.withAddress(of: fits + "b") { _, _ in true }, "a longer path would be cut short and name another file")
        XCTAssertEqual(DaemonSocketPath.defaultPath, "/tmp/recurd.sock")
    }
}
