import RecurCore

/// A JSON value for the CLI's machine-readable output (`--json`, metrics logs). Object
/// members keep their order, so output is stable and reads in a sensible order.
enum JSONText {
    case object([(String, JSONText)])
    case array([JSONText])
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case null

    /// A float that prints with Float's shortest round-tripping digits, not Double's.
    static func float(_ value: Float) -> JSONText {
        value.isFinite ? .double(Double(value.description)!) : .null
    }

    /// Compact JSON on one line (no spaces), as JSON Lines needs.
    var rendered: String {
        var out = ""
        render(into: &out)
        return out
    }

    private func render(into out: inout String) {
        switch self {
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += "," }
                out += Self.quote(key) + ":"
                value.render(into: &out)
            }
            out += "}"
        case .array(let elements):
            out += "["
            for (i, value) in elements.enumerated() {
                if i > 0 { out += "," }
                value.render(into: &out)
            }
            out += "]"
        case .string(let s): out += Self.quote(s)
        case .int(let n): out += String(n)
        // Swift prints the shortest digits that read back to the same Double; JSON has no
        // NaN or infinity, so those become null.
        case .double(let x): out += x.isFinite ? x.description : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }

    /// `s` as a JSON string literal (RecurCore's, as model files write them).
    static func quote(_ s: String) -> String { JSONString.literal(s) }
}
