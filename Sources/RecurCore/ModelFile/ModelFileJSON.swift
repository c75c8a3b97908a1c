/// The JSON of a model file: its safetensors header and the metadata values that are JSON
/// texts themselves (vocabulary, provenance). Read with the same `JSONValue` parser as the
/// daemon's protocol, under explicit limits (nesting depth, value count, strict UTF-8);
/// written with `JSONString`.
extension JSONValue {
    /// The cap on values in a header: 100 000 tensors need about a million. It bounds the parse
    /// tree (tens of bytes per value) whatever the text's size.
    static let modelFileMaxValues = 1 << 20

    /// Parses `bytes[range]` as exactly one JSON value; `what` names it in error messages
    /// ("the header", "metadata 'vocabulary'").
    /// - Throws: `.invalidModelFile` with the byte offset (from the start of `bytes`) of the problem.
    static func parseModelFileText(_ bytes: [UInt8], range: Range<Int>, what: String,
                                   maxValues: Int = modelFileMaxValues) throws(RecurError) -> JSONValue {
        let result: Result<JSONValue, RecurError> = bytes.withUnsafeBytes { all in
            let text = UnsafeRawBufferPointer(rebasing: all[range])
            if let bad = UTF8Validation.firstInvalidOffset(text) {
                return .failure(.invalidModelFile("\(what) has invalid UTF-8 at byte \(range.lowerBound + bad)"))
            }
            do throws(JSONParseError) {
                return .success(try JSONValue.parse(text, maxValues: maxValues))
            } catch {
                return .failure(.invalidModelFile("\(what) is not valid JSON: \(error.reason) at byte \(range.lowerBound + error.offset)"))
            }
        }
        return try result.get()
    }

    /// Parses the whole of `text`; see `parseModelFileText(_:range:what:maxValues:)`.
    static func parseModelFileText(_ text: String, what: String,
                                   maxValues: Int = modelFileMaxValues) throws(RecurError) -> JSONValue {
        let bytes = Array(text.utf8)
        return try parseModelFileText(bytes, range: 0..<bytes.count, what: what, maxValues: maxValues)
    }

    /// The members, when this is an object (repeated keys kept, so callers can reject them).
    var objectMembers: [JSONMember]? {
        if case .object(let members) = self { members } else { nil }
    }

    /// The elements, when this is an array.
    var arrayElements: [JSONValue]? {
        if case .array(let elements) = self { elements } else { nil }
    }

    /// The number as a non-negative `Int` written as a plain integer: nil for fractions,
    /// exponents, negatives and overflow.
    var nonNegativeInt: Int? {
        guard case .number(let text) = self, let value = Int(text), value >= 0 else { return nil }
        return value
    }
}

/// JSON string literals, for the model file's header and metadata values and the CLI's
/// machine-readable output.
public enum JSONString {
    /// `s` as a JSON string literal. Non-ASCII stays raw UTF-8 (valid JSON, readable by
    /// Python's `json` and serde); quotes, backslashes and control characters are escaped.
    public static func literal(_ s: String) -> String {
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
        "[" + strings.map(literal).joined(separator: ", ") + "]"
    }

    /// A JSON object of strings with keys in sorted order, e.g. the provenance metadata value.
    static func stringObject(_ object: [String: String]) -> String {
        let members = object.keys.sorted(by: Vocabulary.scalarOrder).map { literal($0) + ": " + literal(object[$0]!) }
        return "{" + members.joined(separator: ", ") + "}"
    }
}
