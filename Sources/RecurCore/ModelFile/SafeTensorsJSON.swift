/// The JSON subset a safetensors header is written in, parsed by hand so that hostile input
/// meets explicit limits: nesting depth, strict UTF-8, integers checked for overflow.
/// Objects keep their key order and duplicate keys so the caller can reject duplicates;
/// numbers keep their literal text so the caller decides what range it accepts.
enum SafeTensorsJSON {
    case object([(key: String, value: SafeTensorsJSON)])
    case array([SafeTensorsJSON])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// Deeper nesting than any header needs; keeps the recursive parser's stack small.
    static let maxDepth = 32
    /// The default cap on values per document: a header of 100 000 tensors needs about a
    /// million. It bounds the parse tree (tens of bytes per value) whatever the text size.
    static let defaultMaxValues = 1 << 20

    /// Parses `bytes[range]` as exactly one JSON value surrounded by optional white space.
    /// - Parameters:
    ///   - what: names the text in error messages ("the header", "metadata 'vocabulary'").
    ///   - maxValues: how many values (containers included) the document may hold.
    /// - Throws: `.invalidModelFile` with the byte offset of the problem.
    static func parse(_ bytes: [UInt8], range: Range<Int>, what: String,
                      maxValues: Int = defaultMaxValues) throws(RecurError) -> SafeTensorsJSON {
        var parser = Parser(bytes: bytes, index: range.lowerBound, end: range.upperBound, what: what,
                            valuesLeft: maxValues)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == parser.end else { throw parser.fail("unexpected text after the JSON value") }
        return value
    }

    static func parse(_ text: String, what: String,
                      maxValues: Int = defaultMaxValues) throws(RecurError) -> SafeTensorsJSON {
        let bytes = Array(text.utf8)
        return try parse(bytes, range: 0..<bytes.count, what: what, maxValues: maxValues)
    }

    var objectMembers: [(key: String, value: SafeTensorsJSON)]? {
        if case .object(let members) = self { members } else { nil }
    }

    var arrayElements: [SafeTensorsJSON]? {
        if case .array(let elements) = self { elements } else { nil }
    }

    var stringValue: String? {
        if case .string(let s) = self { s } else { nil }
    }

    /// The value as a non-negative `Int`, or nil for fractions, exponents, negatives and overflow.
    var nonNegativeInt: Int? {
        guard case .number(let text) = self, let value = Int(text), value >= 0 else { return nil }
        return value
    }

    // MARK: Writing

    /// `s` as a JSON string literal. Non-ASCII stays raw UTF-8 (valid JSON, readable by
    /// Python's `json` and serde); quotes, backslashes and control characters are escaped.
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A JSON array of strings, e.g. the vocabulary metadata value.
    static func stringArray(_ strings: [String]) -> String {
        "[" + strings.map(quote).joined(separator: ", ") + "]"
    }

    /// A JSON object of strings with keys in sorted order, e.g. the provenance metadata value.
    static func stringObject(_ object: [String: String]) -> String {
        let members = object.keys.sorted(by: Vocabulary.scalarOrder).map { quote($0) + ": " + quote(object[$0]!) }
        return "{" + members.joined(separator: ", ") + "}"
    }
}

extension SafeTensorsJSON {
    private struct Parser {
        let bytes: [UInt8]
        var index: Int
        let end: Int
        let what: String
        var valuesLeft: Int

        func fail(_ message: String) -> RecurError {
            .invalidModelFile("\(what) is not valid JSON: \(message) at byte \(index)")
        }

        mutating func skipWhitespace() {
            while index < end {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        func peek() -> UInt8? { index < end ? bytes[index] : nil }

        mutating func expect(_ literal: String) throws(RecurError) {
            for byte in literal.utf8 {
                guard peek() == byte else { throw fail("expected '\(literal)'") }
                index += 1
            }
        }

        mutating func parseValue(depth: Int) throws(RecurError) -> SafeTensorsJSON {
            guard depth < SafeTensorsJSON.maxDepth else { throw fail("nesting deeper than \(SafeTensorsJSON.maxDepth) levels") }
            guard valuesLeft > 0 else { throw fail("more values than the limit allows") }
            valuesLeft -= 1
            guard let byte = peek() else { throw fail("unexpected end of text") }
            switch byte {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw fail("unexpected character")
            }
        }

        mutating func parseObject(depth: Int) throws(RecurError) -> SafeTensorsJSON {
            index += 1  // {
            var members: [(key: String, value: SafeTensorsJSON)] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { index += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                try expect(":")
                skipWhitespace()
                members.append((key, try parseValue(depth: depth + 1)))
                skipWhitespace()
                guard let next = peek() else { throw fail("unexpected end of text in an object") }
                index += 1
                if next == UInt8(ascii: "}") { return .object(members) }
                guard next == UInt8(ascii: ",") else { index -= 1; throw fail("expected ',' or '}'") }
            }
        }

        mutating func parseArray(depth: Int) throws(RecurError) -> SafeTensorsJSON {
            index += 1  // [
            var elements: [SafeTensorsJSON] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { index += 1; return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard let next = peek() else { throw fail("unexpected end of text in an array") }
                index += 1
                if next == UInt8(ascii: "]") { return .array(elements) }
                guard next == UInt8(ascii: ",") else { index -= 1; throw fail("expected ',' or ']'") }
            }
        }

        mutating func parseNumber() throws(RecurError) -> SafeTensorsJSON {
            let start = index
            func digits(_ p: inout Parser) -> Int {
                let s = p.index
                while let b = p.peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) { p.index += 1 }
                return p.index - s
            }
            if peek() == UInt8(ascii: "-") { index += 1 }
            let intStart = index
            let intDigits = digits(&self)
            guard intDigits > 0 else { throw fail("expected digits") }
            guard intDigits == 1 || bytes[intStart] != UInt8(ascii: "0") else { throw fail("leading zero in a number") }
            if peek() == UInt8(ascii: ".") {
                index += 1
                guard digits(&self) > 0 else { throw fail("expected digits after '.'") }
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                index += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
                guard digits(&self) > 0 else { throw fail("expected digits in the exponent") }
            }
            return .number(String(decoding: bytes[start..<index], as: UTF8.self))
        }

        /// Parses a string literal; `index` is at the opening quote.
        mutating func parseString() throws(RecurError) -> String {
            index += 1
            var out: [UInt8] = []
            while true {
                guard let byte = peek() else { throw fail("unterminated string") }
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    let text = String(decoding: out, as: UTF8.self)
                    // Decoding replaced invalid UTF-8 with U+FFFD iff the bytes changed.
                    guard text.utf8.elementsEqual(out) else { throw fail("invalid UTF-8 in a string") }
                    return text
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let escape = peek() else { throw fail("unterminated escape") }
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5C)
                    case UInt8(ascii: "/"): out.append(0x2F)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var value = try parseHex4()
                        if (0xD800...0xDBFF).contains(value) {
                            guard peek() == UInt8(ascii: "\\") else { throw fail("unpaired surrogate escape") }
                            index += 1
                            guard peek() == UInt8(ascii: "u") else { throw fail("unpaired surrogate escape") }
                            index += 1
                            let low = try parseHex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate escape") }
                            value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(value) else { throw fail("unpaired surrogate escape") }
                        WordSegmenter.appendUTF8(scalar, to: &out)
                    default:
                        index -= 1
                        throw fail("unknown escape")
                    }
                default:
                    guard byte >= 0x20 else { throw fail("control character in a string") }
                    out.append(byte)
                    index += 1
                }
            }
        }

        mutating func parseHex4() throws(RecurError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let byte = peek() else { throw fail("unterminated \\u escape") }
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw fail("bad hex digit in a \\u escape")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }
    }
}
