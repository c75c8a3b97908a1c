import NIOCore
import RecurCore
@testable import RecurServer
import XCTest

final class JSONCodecTests: XCTestCase {
    private func parse(_ text: String) throws -> JSONValue {
        try JSONValue.parse(Array(text.utf8))
    }

    func testParse_whenGivenNestedValues_keepsOrderAndLiterals() throws {
        let value = try parse(#" {"b":[1,2.50,-3e2,true,false,null],"a":{"x":"y"},"n":12345678901234567890} "#)
        XCTAssertEqual(value["b"], .array([.number("1"), .number("2.50"), .number("-3e2"), .bool(true), .bool(false), .null]))
        XCTAssertEqual(value["a"]?["x"], .string("y"))
        XCTAssertEqual(value.rendered, #"{"b":[1,2.50,-3e2,true,false,null],"a":{"x":"y"},"n":12345678901234567890}"#)
    }


    func testParse_whenStringHasEscapes_decodesThemIncludingSurrogatePairs() throws {
        let value = try parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#)
        XCTAssertEqual(value, .string("a\"b\\c/d\n\té😀"))
    }

    func testParse_whenInputIsMalformed_namesTheByteOffset() {
        let cases: [(String, Int)] = [
            (#"{"a":1,}"#, 7), (#"{"a" 1}"#, 5), ("[1 2]", 3), (#""abc"#, 4), ("01", 1), ("1.", 2),
            ("tru", 0), (#""\ud800x""#, 7), (#""\x""#, 2), ("{} {}", 3), ("", 0),
        ]
        for (text, offset) in cases {
            XCTAssertThrowsError(try parse(text), text) { error in
                XCTAssertEqual((error as? JSONParseError)?.offset, offset, "\(text): \(error)")
            }
        }
    }

    func testParse_whenNestedTooDeep_failsInsteadOfOverflowingTheStack() {
        let deep = String(repeating: "[", count: 100_000)
        XCTAssertThrowsError(try parse(deep)) { error in
            XCTAssertTrue("\(error)".contains("nesting deeper than"), "\(error)")
        }
    }

    func testParse_whenStringHoldsARawControlCharacter_refusesIt() {
        XCTAssertThrowsError(try parse("\"a\u{1}b\""))
    }

    func testNumberAccessors_readIntegersExactlyAndRejectFractions() {
        XCTAssertEqual(JSONValue.number("5").intValue, 5)
        XCTAssertEqual(JSONValue.number("5.0").intValue, 5)
        XCTAssertEqual(JSONValue.number("5e2").intValue, 500)
        XCTAssertNil(JSONValue.number("5.5").intValue)
        XCTAssertNil(JSONValue.number("1e300").intValue)
        XCTAssertEqual(JSONValue.number("18446744073709551615").uint64Value, UInt64.max)
        XCTAssertNil(JSONValue.number("-1").uint64Value)
    }

    func testWriteJSONString_escapesQuotesBackslashesAndControlCharacters() {
        var buffer = ByteBuffer()
        buffer.writeJSONString("a\"b\\c\nd\u{1}e\u{7F}é")
        XCTAssertEqual(String(buffer: buffer), #""a\"b\\c\nd\u0001e\u007fé""#)
        XCTAssertEqual(try JSONValue.parse(Array(buffer.readableBytesView)), .string("a\"b\\c\nd\u{1}e\u{7F}é"))
    }

    func testWriteJSONFloat_usesShortestRoundTripDigitsAndNullForNonFinite() {
        for value: Float in [-1.2345678, 0.1, 1e-5, -0.0, 3.4028235e38, 1.0 / 3.0] {
            var buffer = ByteBuffer()
            buffer.writeJSONFloat(value)
            XCTAssertEqual(Float(String(buffer: buffer)), value)
            XCTAssertNotNil(try? JSONValue.parse(Array(buffer.readableBytesView)))
        }
        var buffer = ByteBuffer()
        buffer.writeJSONFloat(-.infinity)
        XCTAssertEqual(String(buffer: buffer), "null")
    }

    func testUTF8Validation_findsTheFirstInvalidByte() {
        func check(_ bytes: [UInt8]) -> Int? { bytes.withUnsafeBytes { UTF8Validation.firstInvalidOffset($0) } }
        XCTAssertNil(check(Array("plain ascii text, long enough for the fast path".utf8)))
        XCTAssertNil(check(Array("é€😀".utf8)))
        XCTAssertEqual(check([0x61, 0xFF]), 1)
        XCTAssertEqual(check([0x61, 0x62, 0xC0, 0x80]), 2)  // overlong
        XCTAssertEqual(check([0xED, 0xA0, 0x80]), 0)  // surrogate
        XCTAssertEqual(check([0xF4, 0x90, 0x80, 0x80]), 0)  // above U+10FFFF
        XCTAssertEqual(check([0x61, 0xE2, 0x82]), 1)  // truncated
        XCTAssertEqual(check(Array("0123456789".utf8) + [0x80]), 10)
    }
}
