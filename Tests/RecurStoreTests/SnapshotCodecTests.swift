import RecurEngine
import RecurStore
import RecurTestSupport
import XCTest

final class SnapshotCodecTests: XCTestCase {
    private func sample(owner: UInt32? = 1000) -> StreamSnapshot {
        StreamSnapshot(stream: "web-1 é", modelHash: 0x0123_4567_89AB_CDEF, vocabularyHash: 42, offset: 17, scoredTokens: 16,
                       lossSum: 23.5, created: 1_700_000_000.25, lastActivity: 1_700_000_100.5, owner: owner,
                       state: (0..<64).map { Float($0) * 0.25 - 3 }, logProbs: (0..<27).map { -Float($0) },
                       pendingText: [0xE6, 0xBC])
    }

    func test_decode_ofEncoded_givesTheSnapshotBack() throws {
        for snapshot in [sample(), sample(owner: nil)] {
            XCTAssertEqual(try StreamSnapshot.decode(snapshot.encoded()), snapshot)
        }
    }

    func test_decode_everyTruncation_throws() {
        let bytes = sample().encoded()
        for n in 0..<bytes.count {
            XCTAssertThrowsError(try StreamSnapshot.decode(Array(bytes[..<n])), "a record cut to \(n) of \(bytes.count) bytes")
        }
    }

    func test_decode_anyFlippedBit_throws() {
        let bytes = sample().encoded()
        for i in stride(from: 0, to: bytes.count, by: 3) {
            var broken = bytes
            broken[i] ^= 0x10
            XCTAssertThrowsError(try StreamSnapshot.decode(broken), "bit 4 of byte \(i) flipped")
        }
    }

    func test_decode_trailingBytesOrOtherVersion_throwsWithASentence() {
        var longer = sample().encoded()
        longer.insert(0, at: longer.count - 4)
        XCTAssertThrowsError(try StreamSnapshot.decode(longer))
        XCTAssertThrowsError(try StreamSnapshot.decode(Array("RCSN".utf8) + [UInt8](repeating: 0xFF, count: 200))) { error in
            XCTAssertTrue("\(error)".contains("checksum"), "\(error)")
        }
    }

    func test_decode_randomBytes_neverTraps() {
        var rng = TestRNG(seed: 44)
        for n in [0, 1, 4, 80, 300] {
            for _ in 0..<200 {
                var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if n >= 4 { bytes.replaceSubrange(0..<4, with: Array("RCSN".utf8)) }
                XCTAssertThrowsError(try StreamSnapshot.decode(bytes))
            }
        }
    }
}
