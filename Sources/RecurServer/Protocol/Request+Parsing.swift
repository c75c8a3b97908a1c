import RecurCore
import RecurEngine
/// The outcome of reading one request line: a request, or the error to send back (with the
/// request's "id" when it could be read).
public enum ParsedLine: Sendable, Equatable {
    /// A valid request, ready to serve.
    case request(Request)
    /// The error to send back, with the request's id when it could be read.
    case failure(id: JSONValue?, ProtocolError)
}

extension Request {
    /// Reads one line (without its newline): UTF-8, then JSON, then the op and its members.
    /// Unknown members are ignored, so clients may send fields newer daemons understand.
    public static func parse(line: UnsafeRawBufferPointer, limits: RequestLimits) -> ParsedLine {
        if let bad = UTF8Validation.firstInvalidOffset(line) {
            return .failure(id: nil, ProtocolError(.badJSON, "the line is not valid UTF-8 (byte \(bad) is 0x\(String(line[bad], radix: 16, uppercase: true)), which cannot start or continue a character there)"))
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(line)
        } catch {
            return .failure(id: nil, ProtocolError(.badJSON, error.description))
        }
        guard case .object = json else {
            return .failure(id: nil, ProtocolError(.badJSON, "a request must be a JSON object such as {\"op\":\"stats\"}, not \(json.typeName)"))
        }
        var id: JSONValue? = nil
        if let given = json["id"] {
            // Not echoed when refused: a 200 KB id would cost 200 KB in the error too.
            if let problem = RequestID.problem(with: given) { return .failure(id: nil, ProtocolError(.badValue, problem)) }
            id = given
        }
        do {
            return .request(Request(id: id, operation: try operation(of: json, limits: limits)))
        } catch {
            return .failure(id: id, error)
        }
    }

    /// Parses `line`; see `parse(line:limits:)`.
    public static func parse(line: [UInt8], limits: RequestLimits) -> ParsedLine {
        line.withUnsafeBytes { parse(line: $0, limits: limits) }
    }

    static func operation(of json: JSONValue, limits: RequestLimits) throws(ProtocolError) -> Operation {
        let fields = RequestFields(json: json, limits: limits)
        guard let opValue = json["op"] else {
            throw ProtocolError(.missingField, "the request has no 'op'; one of \(Operation.names.joined(separator: ", ")) is needed")
        }
        guard let op = opValue.stringValue else {
            throw ProtocolError(.badValue, "'op' must be a string, not \(opValue.typeName)")
        }
        switch op {
        case "feed":
            return .feed(stream: try fields.stream(), text: try fields.requiredString("text"),
                         k: try fields.int("k", in: 0...limits.maxTopK), flush: try fields.bool("flush") ?? false,
                         units: try fields.units())
        case "predict":
            guard let count = try fields.int("n", in: 0...limits.maxPredict) else {
                throw ProtocolError(.missingField, "predict needs 'n', the number of tokens to generate (0 to \(limits.maxPredict))")
            }
            return .predict(stream: try fields.stream(), count: count,
                            temperature: try fields.temperature() ?? 0,
                            k: try fields.int("k", in: 1...limits.maxTopK), seed: try fields.seed())
        case "reset": return .reset(stream: try fields.stream())
        case "fork":
            guard let into = try fields.string("into") else {
                throw ProtocolError(.missingField, "fork needs 'into', the name of the new stream")
            }
            if let problem = StreamName.problem(with: into, field: "into") { throw ProtocolError(.badValue, problem) }
            return .fork(stream: try fields.stream(), into: into)
        case "end": return .end(stream: try fields.stream())
        case "info": return .info(stream: try fields.stream())
        case "list": return .list
        case "stats": return .stats
        case "model": return .model
        case "view": return .view
        default:
            let shown = (op.count > 40 ? String(op.prefix(40)) + "..." : op).escapingDisplayControls
            throw ProtocolError(.unknownOp, "unknown op '\(shown)'; the ops are \(Operation.names.joined(separator: ", "))")
        }
    }
}

/// Typed access to a request's members, each failure a bad_value or missing_field sentence.
struct RequestFields {
    let json: JSONValue
    let limits: RequestLimits

    func string(_ key: String) throws(ProtocolError) -> String? {
        guard let value = json[key], value != .null else { return nil }
        guard let s = value.stringValue else {
            throw ProtocolError(.badValue, "'\(key)' must be a string, not \(value.typeName)")
        }
        return s
    }

    func requiredString(_ key: String) throws(ProtocolError) -> String {
        guard let s = try string(key) else {
            throw ProtocolError(.missingField, "the request has no '\(key)'")
        }
        return s
    }

    func stream() throws(ProtocolError) -> String? {
        guard let name = try string("stream") else { return nil }
        if let problem = StreamName.problem(with: name, field: "stream") { throw ProtocolError(.badValue, problem) }
        return name
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws(ProtocolError) -> Int? {
        guard let value = json[key], value != .null else { return nil }
        guard case .number(let literal) = value else {
            throw ProtocolError(.badValue, "'\(key)' must be an integer from \(range.lowerBound) to \(range.upperBound), not \(value.typeName)")
        }
        guard let n = value.intValue, range.contains(n) else {
            throw ProtocolError(.badValue, "'\(key)' must be an integer from \(range.lowerBound) to \(range.upperBound), not \(literal)")
        }
        return n
    }

    func bool(_ key: String) throws(ProtocolError) -> Bool? {
        guard let value = json[key], value != .null else { return nil }
        guard case .bool(let b) = value else {
            throw ProtocolError(.badValue, "'\(key)' must be true or false, not \(value.typeName)")
        }
        return b
    }

    func temperature() throws(ProtocolError) -> Float? {
        guard let value = json["temperature"], value != .null else { return nil }
        let message = "'temperature' must be a number from 0 (greedy) to \(Int(limits.maxTemperature))"
        guard case .number(let literal) = value else { throw ProtocolError(.badValue, "\(message), not \(value.typeName)") }
        guard let t = Float(literal), t.isFinite, t >= 0, t <= limits.maxTemperature else {
            throw ProtocolError(.badValue, "\(message), not \(literal)")
        }
        return t
    }

    /// `"units"`: an array of at most `StreamEngine.maxUnits` distinct non-negative integers,
    /// or "all". Whether they exist in the model is the engine's check.
    func units() throws(ProtocolError) -> UnitSelection {
        guard let value = json["units"], value != .null else { return .none }
        let shape = "'units' must be an array of hidden-unit indices such as [3,17], or \"all\""
        if case .string(let s) = value {
            guard s == "all" else { throw ProtocolError(.badValue, "\(shape), not the string '\(s.count > 40 ? String(s.prefix(40)) + "..." : s)'".escapingDisplayControls) }
            return .all
        }
        guard case .array(let items) = value else { throw ProtocolError(.badValue, "\(shape), not \(value.typeName)") }
        guard items.count <= StreamEngine.maxUnits else {
            throw ProtocolError(.badValue, "'units' lists \(items.count) units; at most \(StreamEngine.maxUnits) per event")
        }
        var units: [Int] = []
        units.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard case .number(let literal) = item else {
                throw ProtocolError(.badValue, "'units' item \(i) must be a non-negative integer, not \(item.typeName)")
            }
            guard let unit = item.intValue, unit >= 0 else {
                throw ProtocolError(.badValue, "'units' item \(i) must be a non-negative integer, not \(literal)")
            }
            units.append(unit)
        }
        return .list(units)
    }

    func seed() throws(ProtocolError) -> UInt64? {
        guard let value = json["seed"], value != .null else { return nil }
        guard let seed = value.uint64Value else {
            let shown = if case .number(let literal) = value { literal } else { value.typeName }
            throw ProtocolError(.badValue, "'seed' must be a non-negative integer below 2^64, not \(shown)")
        }
        return seed
    }
}
