import NIOCore
@testable import RecurServer
import XCTest

final class LineFrameDecoderTests: XCTestCase {
    /// Feeds `chunks` one by one and collects the frames, as the channel handler would.
    private func frames(_ chunks: [String], maxLength: Int = 16, eof: Bool = true) -> [String] {
        var decoder = LineFrameDecoder(maxLength: maxLength)
        var buffer = ByteBuffer()
        var out: [String] = []
        func drain() {
            while let frame = decoder.nextFrame(&buffer) {
                switch frame {
                case .line(let line)?: out.append(String(buffer: line))
                case .tooLong(let limit)?: out.append("<too long: \(limit)>")
                case nil: break
                }
            }
        }
        for chunk in chunks {
            buffer.writeString(chunk)
            drain()
        }
        if eof, buffer.readableBytes > 0, let last = LineFrameDecoder.trimmed(buffer) {
            out.append("<eof: \(String(buffer: last))>")
        }
        return out
    }

    func testDecode_whenLinesArriveSplitAnywhere_yieldsWholeLines() {
        XCTAssertEqual(frames(["ab", "c\nde", "f\n\ng", "h\n"]), ["abc", "def", "gh"])
    }

    func testDecode_whenLinesEndWithCRLF_dropsTheCarriageReturn() {
        XCTAssertEqual(frames(["one\r\ntwo\r", "\n"]), ["one", "two"])
    }

    func testDecode_whenLineIsTooLong_yieldsOneTooLongAndSkipsToItsNewline() {
        let long = String(repeating: "x", count: 40)
        XCTAssertEqual(frames(["ok\n", long, long, "\nafter\n"]), ["ok", "<too long: 16>", "after"])
        XCTAssertEqual(frames([long + "\nafter\n"]), ["<too long: 16>", "after"])
    }

    func testDecode_whenLineIsExactlyTheLimit_acceptsIt() {
        let exact = String(repeating: "y", count: 16)
        XCTAssertEqual(frames([exact + "\r\n", exact + "z\n"]), [exact, "<too long: 16>"])
    }

    func testDecode_whenInputEndsWithoutNewline_keepsTheLastLineForEOF() {
        XCTAssertEqual(frames(["a\nlast"]), ["a", "<eof: last>"])
    }

    func testDecode_whenOverLongLineIsFedByteByByte_holdsAtMostTheLimit() {
        var decoder = LineFrameDecoder(maxLength: 16)
        var buffer = ByteBuffer()
        var tooLong = 0
        for _ in 0..<10_000 {
            buffer.writeString("z")
            while let frame = decoder.nextFrame(&buffer) { if case .tooLong? = frame { tooLong += 1 } }
            buffer.discardReadBytes()
            XCTAssertLessThanOrEqual(buffer.readableBytes, 17)
        }
        XCTAssertEqual(tooLong, 1)
    }
}
