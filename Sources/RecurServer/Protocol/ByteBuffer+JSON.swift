import NIOCore
import RecurCore

/// Compact JSON written straight into a `ByteBuffer`: no spaces, members in the order written,
/// floats with the shortest digits that read back to the same value. Replies are built with
/// these calls rather than a generic encoder because a feed writes one event per token.
extension ByteBuffer {
    /// `text` as a JSON string literal: quote, backslash, control characters and DEL escaped.
    mutating func writeJSONString(_ text: String) {
        var text = text
        text.withUTF8 { writeJSONString(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// UTF-8 bytes as a JSON string literal; see `writeJSONString(_:)`.
    mutating func writeJSONString(utf8 bytes: UnsafeRawBufferPointer) {
        writeInteger(UInt8(ascii: "\""))
        var runStart = 0
        for i in 0..<bytes.count {
            let b = bytes[i]
            guard b < 0x20 || b == 0x22 || b == 0x5C || b == 0x7F else { continue }
            writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<i]))
            switch b {
            case 0x22: writeStaticString("\\\"")
            case 0x5C: writeStaticString("\\\\")
            case 0x0A: writeStaticString("\\n")
            case 0x0D: writeStaticString("\\r")
            case 0x09: writeStaticString("\\t")
            default:
                writeStaticString("\\u00")
                writeInteger(Self.hexDigit(b >> 4))
                writeInteger(Self.hexDigit(b & 0xF))
            }
            runStart = i + 1
        }
        writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        writeInteger(UInt8(ascii: "\""))
    }

    static func hexDigit(_ v: UInt8) -> UInt8 {
        v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10
    }

    /// An integer in decimal.
    mutating func writeJSONInt(_ value: Int) {
        writeString(String(value))
    }

    /// A float with Swift's shortest round-tripping digits (`-1.2345678`, `1e-05`); JSON has
    /// no NaN or infinity, so those are written as null.
    mutating func writeJSONFloat(_ value: Float) {
        if value.isFinite { writeString(value.description) } else { writeStaticString("null") }
    }

    /// A double with Swift's shortest round-tripping digits; non-finite values as null.
    mutating func writeJSONDouble(_ value: Double) {
        if value.isFinite { writeString(value.description) } else { writeStaticString("null") }
    }

    /// `true` or `false`.
    mutating func writeJSONBool(_ value: Bool) {
        if value { writeStaticString("true") } else { writeStaticString("false") }
    }

    /// `"key":`, for a key that needs no escaping (every key the protocol writes).
    mutating func writeJSONKey(_ key: StaticString) {
        writeInteger(UInt8(ascii: "\""))
        writeStaticString(key)
        writeStaticString("\":")
    }

    /// `,"key":value` after earlier members, for a key that needs no escaping.
    mutating func writeJSONMember(_ key: StaticString, int value: Int) {
        writeJSONMemberKey(key)
        writeJSONInt(value)
    }

    /// `,"key":value` (a double, shortest round-tripping digits).
    mutating func writeJSONMember(_ key: StaticString, double value: Double) {
        writeJSONMemberKey(key)
        writeJSONDouble(value)
    }

    /// `,"key":value` (a float).
    mutating func writeJSONMember(_ key: StaticString, float value: Float) {
        writeJSONMemberKey(key)
        writeJSONFloat(value)
    }

    /// `,"key":"value"` (escaped).
    mutating func writeJSONMember(_ key: StaticString, string value: String) {
        writeJSONMemberKey(key)
        writeJSONString(value)
    }

    /// `,"key":true` or `false`.
    mutating func writeJSONMember(_ key: StaticString, bool value: Bool) {
        writeJSONMemberKey(key)
        writeJSONBool(value)
    }

    private mutating func writeJSONMemberKey(_ key: StaticString) {
        writeInteger(UInt8(ascii: ","))
        writeJSONKey(key)
    }

    /// Any parsed value, compactly; numbers are written back as their original literal.
    mutating func writeJSONValue(_ value: JSONValue) {
        switch value {
        case .null: writeStaticString("null")
        case .bool(let b): writeJSONBool(b)
        case .number(let literal): writeString(literal)
        case .string(let s): writeJSONString(s)
        case .array(let elements):
            writeInteger(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { writeInteger(UInt8(ascii: ",")) }
                writeJSONValue(element)
            }
            writeInteger(UInt8(ascii: "]"))
        case .object(let members):
            writeInteger(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { writeInteger(UInt8(ascii: ",")) }
                writeJSONString(member.key)
                writeInteger(UInt8(ascii: ":"))
                writeJSONValue(member.value)
            }
            writeInteger(UInt8(ascii: "}"))
        }
    }
}

extension JSONValue {
    /// The value as compact JSON text on one line.
    public var rendered: String {
        var buffer = ByteBuffer()
        buffer.writeJSONValue(self)
        return String(buffer: buffer)
    }
}
