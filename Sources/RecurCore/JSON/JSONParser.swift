#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a text (a request line, a model header) is not one JSON value: a sentence naming the byte offset where reading stopped.
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    /// Byte offset (from 0) in the text where the problem was found.
    public var offset: Int
    /// What was expected or found there.
    public var reason: String

    /// The sentence sent to the client in a bad_json error.
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension JSONValue {
    /// Deepest nesting accepted; requests are flat, so this only stops hostile input from
    /// recursing the parser off its stack.
    public static let maxDepth = 64

    /// Parses exactly one JSON value (RFC 8259) surrounded by optional white space.
    /// The bytes must already be valid UTF-8 (see `UTF8Validation`); strings are decoded as is.
    /// - Parameter maxValues: how many values (containers included) the text may hold, which
    ///   bounds the parse tree whatever the text's size (a model file's header, say).
    /// - Throws: `JSONParseError` for anything else, including a lone surrogate in a `\u` escape.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxValues: Int = .max) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, valuesLeft: maxValues)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.position == bytes.count else {
            throw parser.error("unexpected \(parser.describeCurrent()) after the JSON value")
        }
        return value
    }

    /// Parses `bytes`; see `parse(_:maxValues:)`.
    public static func parse(_ bytes: [UInt8], maxValues: Int = .max) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { raw in
            do throws(JSONParseError) { return .success(try parse(raw, maxValues: maxValues)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// A recursive-descent reader over one text's bytes (a request line, a model file's header).
struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    /// Values the text may still hold.
    var valuesLeft: Int

    init(bytes: UnsafeRawBufferPointer, valuesLeft: Int = .max) {
        self.bytes = bytes
        self.valuesLeft = valuesLeft
    }

    func error(_ reason: String) -> JSONParseError {
        JSONParseError(offset: position, reason: reason)
    }

    /// The byte at the current position, quoted for an error message, or "the end of the text".
    func describeCurrent() -> String {
        guard position < bytes.count else { return "the end of the text" }
        let b = bytes[position]
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x" + String(b, radix: 16, uppercase: true)
    }

    mutating func skipSpace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard position < bytes.count else { throw error("expected a value but the text ended") }
        guard valuesLeft > 0 else { throw error("more values than the limit allows") }
        valuesLeft -= 1
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("expected a value, found \(describeCurrent())")
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count,
              memcmp(bytes.baseAddress! + position, word.utf8Start, count) == 0 else {
            throw error("expected '\(word)'")
        }
        position += count
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= JSONValue.maxDepth else { throw error("nesting deeper than \(JSONValue.maxDepth) levels") }
        position += 1  // {
        var members: [JSONMember] = []
        skipSpace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw error("expected a member name in double quotes, found \(describeCurrent())")
            }
            let key = try string()
            skipSpace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                throw error("expected ':' after the member name \"\(key)\", found \(describeCurrent())")
            }
            position += 1
            skipSpace()
            members.append(JSONMember(key: key, value: try value(depth: depth)))
            skipSpace()
            guard position < bytes.count else { throw error("the object is not closed: expected ',' or '}'") }
            switch bytes[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return .object(members)
            default: throw error("expected ',' or '}' after an object member, found \(describeCurrent())")
            }
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= JSONValue.maxDepth else { throw error("nesting deeper than \(JSONValue.maxDepth) levels") }
        position += 1  // [
        var elements: [JSONValue] = []
        skipSpace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipSpace()
            elements.append(try value(depth: depth))
            skipSpace()
            guard position < bytes.count else { throw error("the array is not closed: expected ',' or ']'") }
            switch bytes[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return .array(elements)
            default: throw error("expected ',' or ']' after an array element, found \(describeCurrent())")
            }
        }
    }

    /// A number's literal text, checked against `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    mutating func number() throws(JSONParseError) -> String {
        let start = position
        func digits(_ p: inout Int) -> Int {
            let from = p
            while p < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[p]) { p += 1 }
            return p - from
        }
        var p = position
        if bytes[p] == UInt8(ascii: "-") { p += 1 }
        guard p < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[p]) else {
            position = p
            throw error("expected a digit in the number")
        }
        if bytes[p] == UInt8(ascii: "0") {
            p += 1
            if p < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[p]) {
                position = p
                throw error("a number may not have a leading zero")
            }
        } else {
            _ = digits(&p)
        }
        if p < bytes.count, bytes[p] == UInt8(ascii: ".") {
            p += 1
            guard digits(&p) > 0 else { position = p; throw error("expected a digit after the decimal point") }
        }
        if p < bytes.count, bytes[p] == UInt8(ascii: "e") || bytes[p] == UInt8(ascii: "E") {
            p += 1
            if p < bytes.count, bytes[p] == UInt8(ascii: "+") || bytes[p] == UInt8(ascii: "-") { p += 1 }
            guard digits(&p) > 0 else { position = p; throw error("expected a digit in the exponent") }
        }
        position = p
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<p]), as: UTF8.self)
    }

    /// A string's contents with escapes resolved; `position` is at the opening quote.
    mutating func string() throws(JSONParseError) -> String {
        position += 1  // "
        let start = position
        // Fast path: no escapes, so the bytes between the quotes are the string.
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                position += 1
                return text
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character 0x\(String(b, radix: 16, uppercase: true)) inside a string; write it as an escape such as \\n") }
            position += 1
        }
        var out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        while position < bytes.count {
            let b = bytes[position]
            switch b {
            case UInt8(ascii: "\""):
                position += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try escape(into: &out)
            case 0..<0x20:
                throw error("control character 0x\(String(b, radix: 16, uppercase: true)) inside a string; write it as an escape such as \\n")
            default:
                out.append(b)
                position += 1
            }
        }
        throw error("the string is not closed: the text ended before its closing '\"'")
    }

    /// One backslash escape, appended to `out` as UTF-8.
    mutating func escape(into out: inout [UInt8]) throws(JSONParseError) {
        position += 1  // backslash
        guard position < bytes.count else { throw error("the text ended inside an escape") }
        let c = bytes[position]
        position += 1
        switch c {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800...0xDBFF).contains(scalar) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                    throw error("lone high surrogate \\u\(String(scalar, radix: 16, uppercase: true)) is not a character")
                }
                position += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error("high surrogate \\u\(String(scalar, radix: 16, uppercase: true)) is not followed by a low surrogate")
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw error("lone low surrogate \\u\(String(scalar, radix: 16, uppercase: true)) is not a character")
            }
            out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
        default:
            position -= 1
            throw error("unknown escape '\\\(Character(Unicode.Scalar(c)))'")
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("expected four hex digits after \\u") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[position]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw error("expected four hex digits after \\u, found \(describeCurrent())")
            }
            v = v << 4 | UInt32(d)
            position += 1
        }
        return v
    }
}
