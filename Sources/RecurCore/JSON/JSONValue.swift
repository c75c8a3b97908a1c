/// A parsed JSON value, as the protocol reads requests (and as `recur connect` reads replies).
///
/// Numbers keep their literal text, so an "id" such as `12345678901234567890` or `1.10` is
/// echoed exactly as the client wrote it, and integers are read without a detour through
/// `Double`. Object members keep their order; a repeated key resolves to its last value.
public enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// The number's literal text, already checked against JSON's number grammar.
    case number(String)
    /// A string, escapes resolved.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object's members in their order.
    case object([JSONMember])

    /// The value of member `key` when this is an object (the last one if repeated), else nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.key == key })?.value
    }

    /// Whether this is a string, number, boolean or null (the values an "id" may take).
    public var isScalar: Bool {
        switch self {
        case .null, .bool, .number, .string: true
        case .array, .object: false
        }
    }

    /// The string, when this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The number as a `Double`, when this is a number (large literals round, as JSON readers do).
    public var doubleValue: Double? {
        if case .number(let literal) = self { return Double(literal) }
        return nil
    }

    /// The number as an `Int` when it is integral and fits (`5`, `5.0` and `5e0` all give 5).
    public var intValue: Int? {
        guard case .number(let literal) = self else { return nil }
        if let exact = Int(literal) { return exact }
        guard let x = Double(literal), x == x.rounded(), abs(x) <= 0x1p53 else { return nil }
        return Int(x)
    }

    /// The number as a `UInt64` when it is a non-negative integer literal that fits (seeds).
    public var uint64Value: UInt64? {
        guard case .number(let literal) = self else { return nil }
        if let exact = UInt64(literal) { return exact }
        guard let x = Double(literal), x == x.rounded(), x >= 0, x <= 0x1p53 else { return nil }
        return UInt64(x)
    }

    /// A short name of the value's type for error messages ("a string", "an object", ...).
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// One member of a JSON object, in the order the text gave it.
public struct JSONMember: Sendable, Equatable {
    /// The member's name.
    public var key: String
    /// The member's value.
    public var value: JSONValue

    /// Memberwise.
    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}
