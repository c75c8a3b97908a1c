import RecurCore
@testable import RecurServer
import XCTest

final class RequestParsingTests: XCTestCase {
    let limits = RequestLimits(maxTopK: 64, maxPredict: 10_000)

    private func parse(_ text: String) -> ParsedLine {
        Request.parse(line: Array(text.utf8), limits: limits)
    }

    private func assertFailure(_ text: String, code: ErrorCode, id: JSONValue? = nil, mentions: String? = nil,
                               file: StaticString = #filePath, line: UInt = #line) {
        guard case .failure(let gotID, let error) = parse(text) else {
            return XCTFail("\(text) parsed", file: file, line: line)
        }
        XCTAssertEqual(error.code, code.rawValue, "\(text): \(error)", file: file, line: line)
        XCTAssertEqual(gotID, id, text, file: file, line: line)
        if let mentions {
            XCTAssertTrue(error.message.contains(mentions), "\(text): '\(error.message)' lacks '\(mentions)'", file: file, line: line)
        }
    }

    func testParse_whenEveryOpIsWellFormed_readsItsFields() {
        XCTAssertEqual(parse(#"{"op":"feed","stream":"s","text":"hi","k":3,"flush":true,"id":7}"#),
                       .request(Request(id: .number("7"), operation: .feed(stream: "s", text: "hi", k: 3, flush: true))))
        XCTAssertEqual(parse(#"{"op":"feed","text":""}"#),
                       .request(Request(operation: .feed(stream: nil, text: "", k: nil, flush: false))))
        XCTAssertEqual(parse(#"{"op":"predict","n":4,"temperature":0.5,"k":2,"seed":9}"#),
                       .request(Request(operation: .predict(stream: nil, count: 4, temperature: 0.5, k: 2, seed: 9))))
        XCTAssertEqual(parse(#"{"op":"predict","n":4}"#),
                       .request(Request(operation: .predict(stream: nil, count: 4, temperature: 0, k: nil, seed: nil))))
        XCTAssertEqual(parse(#"{"op":"reset","stream":"a"}"#), .request(Request(operation: .reset(stream: "a"))))
        XCTAssertEqual(parse(#"{"op":"fork","stream":"a","into":"b"}"#), .request(Request(operation: .fork(stream: "a", into: "b"))))
        XCTAssertEqual(parse(#"{"op":"end"}"#), .request(Request(operation: .end(stream: nil))))
        XCTAssertEqual(parse(#"{"op":"info","id":"x"}"#), .request(Request(id: .string("x"), operation: .info(stream: nil))))
        XCTAssertEqual(parse(#"{"op":"list"}"#), .request(Request(operation: .list)))
        XCTAssertEqual(parse(#"{"op":"stats","extra":[1,2]}"#), .request(Request(operation: .stats)))
        XCTAssertEqual(parse(#"{"op":"model"}"#), .request(Request(operation: .model)))
    }

    func testParse_whenLineIsNotAJSONObject_givesBadJSON() {
        assertFailure("{\"op\":", code: .badJSON, mentions: "byte 6")
        assertFailure("[1,2]", code: .badJSON, mentions: "JSON object")
        assertFailure("hello", code: .badJSON)
    }

    func testParse_whenLineIsInvalidUTF8_givesBadJSONSayingSo() {
        guard case .failure(_, let error) = Request.parse(line: Array(#"{"op":"feed","text":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8), limits: limits) else {
            return XCTFail("parsed")
        }
        XCTAssertEqual(error.code, "bad_json")
        XCTAssertTrue(error.message.contains("not valid UTF-8"), error.message)
        XCTAssertTrue(error.message.contains("byte 21"), error.message)
    }

    func testParse_whenOpIsMissingOrUnknown_givesMissingFieldOrUnknownOpWithTheID() {
        assertFailure(#"{"id":1}"#, code: .missingField, id: .number("1"), mentions: "'op'")
        assertFailure(#"{"op":"fly","id":"a"}"#, code: .unknownOp, id: .string("a"), mentions: "fly")
        assertFailure(#"{"op":3}"#, code: .badValue)
    }

    func testParse_whenRequiredFieldIsMissing_givesMissingField() {
        assertFailure(#"{"op":"feed"}"#, code: .missingField, mentions: "'text'")
        assertFailure(#"{"op":"predict"}"#, code: .missingField, mentions: "'n'")
        assertFailure(#"{"op":"fork","stream":"a"}"#, code: .missingField, mentions: "'into'")
    }

    func testParse_whenFieldHasWrongTypeOrAbsurdValue_givesBadValueNamingIt() {
        assertFailure(#"{"op":"feed","text":5}"#, code: .badValue, mentions: "'text' must be a string")
        assertFailure(#"{"op":"feed","text":"a","k":"3"}"#, code: .badValue, mentions: "'k'")
        assertFailure(#"{"op":"feed","text":"a","k":65}"#, code: .badValue, mentions: "65")
        assertFailure(#"{"op":"feed","text":"a","k":-1}"#, code: .badValue, mentions: "'k'")
        assertFailure(#"{"op":"feed","text":"a","k":2.5}"#, code: .badValue, mentions: "2.5")
        assertFailure(#"{"op":"feed","text":"a","flush":1}"#, code: .badValue, mentions: "'flush'")
        assertFailure(#"{"op":"predict","n":1e9}"#, code: .badValue, mentions: "'n'")
        assertFailure(#"{"op":"predict","n":3,"temperature":-1}"#, code: .badValue, mentions: "'temperature'")
        assertFailure(#"{"op":"predict","n":3,"k":0}"#, code: .badValue, mentions: "'k'")
        assertFailure(#"{"op":"predict","n":3,"seed":-4}"#, code: .badValue, mentions: "'seed'")
        assertFailure(#"{"op":"info","id":[1]}"#, code: .badValue, id: nil, mentions: "'id'")
    }

    func testParse_whenStreamNameIsEmptyLongControlOrPrivate_givesBadValue() {
        assertFailure(#"{"op":"info","stream":""}"#, code: .badValue, mentions: "empty")
        assertFailure(#"{"op":"info","stream":"\#(String(repeating: "x", count: 257))"}"#, code: .badValue, mentions: "257 bytes")
        assertFailure(#"{"op":"info","stream":"a\nb"}"#, code: .badValue, mentions: "control")
        assertFailure(#"{"op":"info","stream":"~3"}"#, code: .badValue, mentions: "reserved")
        assertFailure(#"{"op":"fork","into":"~3"}"#, code: .badValue, mentions: "reserved")
    }

    func testParse_whenStreamNameHoldsBidiSeparatorOrFormatControls_givesBadValueNamingTheCodePoint() {
        // Each would make a name read as something else where it is echoed (lists, logs, terminals).
        let hostile: [(String, String)] = [(#"\u202E"#, "U+202E"), (#"\u2028"#, "U+2028"), (#"\u2029"#, "U+2029"),
                                           (#"\u202A"#, "U+202A"), (#"\u2066"#, "U+2066"), (#"\u2069"#, "U+2069"),
                                           (#"\u200F"#, "U+200F"), (#"\u061C"#, "U+061C"), (#"\u0085"#, "U+0085"),
                                           (#"\u007F"#, "U+007F"), (#"\u001B"#, "U+001B")]
        for (escape, name) in hostile {
            for op in [#""op":"info","stream""#, #""op":"fork","stream":"a","into""#, #""op":"feed","text":"x","stream""#] {
                assertFailure("{\(op):\"gnp\(escape)exe\",\"id\":1}", code: .badValue, id: .number("1"), mentions: name)
            }
        }
        // Ordinary non-ASCII names, joiners included, stay usable.
        for good in ["café", "日本語", "👩‍💻", "نام‌خانوادگی", "a b"] {
            guard case .request = parse(#"{"op":"info","stream":"\#(good)"}"#) else { return XCTFail("'\(good)' was refused") }
        }
    }

    func testParse_whenIDIsLongerThan256Bytes_givesBadValueWithoutEchoingIt() {
        let long = String(repeating: "x", count: 257)
        assertFailure(#"{"op":"stats","id":"\#(long)"}"#, code: .badValue, id: nil, mentions: "257 bytes")
        assertFailure(#"{"op":"stats","id":\#(String(repeating: "9", count: 300))}"#, code: .badValue, id: nil, mentions: "300 bytes")
        assertFailure(#"{"op":"stats","id":"\#(String(repeating: "é", count: 129))"}"#, code: .badValue, id: nil, mentions: "258 bytes")
        let longest = String(repeating: "x", count: 256)
        XCTAssertEqual(parse(#"{"op":"stats","id":"\#(longest)"}"#), .request(Request(id: .string(longest), operation: .stats)))
    }

    func testParse_whenUnknownOpHoldsABidiOverride_echoesItEscaped() {
        guard case .failure(_, let error) = parse(#"{"op":"x\u202Ey"}"#) else { return XCTFail("parsed") }
        XCTAssertFalse(error.message.unicodeScalars.contains { $0.value == 0x202E }, error.message)
        XCTAssertTrue(error.message.contains("x\\u{202e}y"), error.message)
    }
}
