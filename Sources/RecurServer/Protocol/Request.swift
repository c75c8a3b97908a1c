import RecurCore
/// One request line, validated: everything the daemon needs to serve it, nothing left to check
/// but what only the engine knows (whether the stream exists, whether the text tokenizes).
public struct Request: Sendable, Equatable {
    /// The client's "id", echoed on every reply, event and error of this request.
    public var id: JSONValue?
    /// What is asked.
    public var operation: Operation

    /// Memberwise.
    public init(id: JSONValue? = nil, operation: Operation) {
        self.id = id
        self.operation = operation
    }

    /// What a request asks for. A nil stream means the connection's private stream.
    public enum Operation: Sendable, Equatable {
        /// Absorb `text`; `k` predictions per event (nil: the daemon's default); `flush`
        /// finishes the tokenizer (a held-back word or partial character is emitted); `units`
        /// the hidden units whose values each event carries.
        case feed(stream: String?, text: String, k: Int?, flush: Bool, units: UnitSelection = .none)
        /// Continue the stream by `count` tokens without changing it; temperature 0 is greedy,
        /// `k` restricts sampling to the k most probable tokens.
        case predict(stream: String?, count: Int, temperature: Float, k: Int?, seed: UInt64?)
        /// Zero the stream's state and counters.
        case reset(stream: String?)
        /// Copy the stream under a new name.
        case fork(stream: String?, into: String)
        /// Drop the stream.
        case end(stream: String?)
        /// The stream's offset, loss so far and activity times.
        case info(stream: String?)
        /// Every stream visible to this connection.
        case list
        /// The engine's counters.
        case stats
        /// The model's shape, tokenizer and provenance.
        case model
        /// A token for the live view (`recurd --http`) that shows what this connection's user may see.
        case view

        /// The "op" this operation is written as.
        public var name: String {
            switch self {
            case .feed: "feed"
            case .predict: "predict"
            case .reset: "reset"
            case .fork: "fork"
            case .end: "end"
            case .info: "info"
            case .list: "list"
            case .stats: "stats"
            case .model: "model"
            case .view: "view"
            }
        }

        /// The stream the request names explicitly (a fork's source); nil for none or the
        /// private stream. A cluster node routes a request by it.
        public var namedStream: String? {
            switch self {
            case .feed(let stream, _, _, _, _), .predict(let stream, _, _, _, _), .reset(let stream), .fork(let stream, _),
                 .end(let stream), .info(let stream):
                stream
            case .list, .stats, .model, .view:
                nil
            }
        }

        /// Every op the daemon knows, for the unknown_op message.
        public static let names = ["feed", "predict", "reset", "fork", "end", "info", "list", "stats", "model", "view"]
    }
}

/// The hidden units a feed asks for (`"units"`): indices into the concatenation of every
/// layer's h, checked against the model by the engine.
public enum UnitSelection: Sendable, Equatable {
    /// None (no `"units"`): events carry no unit values and cost nothing more.
    case none
    /// `"units":[3,17]`: these, in this order.
    case list([Int])
    /// `"units":"all"`: every layer's h, refused beyond `StreamEngine.maxUnits` values.
    case all
}

/// Request ids as the protocol accepts them.
public enum RequestID {
    /// Longest id: the UTF-8 bytes of a string, the characters of a number literal. The id is
    /// repeated on every event of its request, so its size is paid once per token.
    public static let maxBytes = 256

    /// Why `id` is unusable, or nil when it is fine (a scalar of at most 256 bytes).
    static func problem(with id: JSONValue) -> String? {
        guard id.isScalar else { return "'id' must be a string, number, boolean or null, not \(id.typeName)" }
        let size = switch id {
        case .string(let s): s.utf8.count
        case .number(let literal): literal.utf8.count
        default: 0
        }
        if size > maxBytes { return "'id' is \(size) bytes long; ids are at most \(maxBytes) bytes" }
        return nil
    }
}

/// The bounds requests are checked against (the daemon's flags and engine options).
public struct RequestLimits: Sendable, Equatable {
    /// Largest k for predictions and top-k sampling.
    public var maxTopK: Int
    /// Largest n for predict.
    public var maxPredict: Int
    /// Largest sampling temperature; beyond it sampling is uniform noise anyway.
    public var maxTemperature: Float = 1000

    /// Bounds with the default maximum temperature.
    public init(maxTopK: Int, maxPredict: Int) {
        self.maxTopK = maxTopK
        self.maxPredict = maxPredict
    }
}

/// Stream names as the protocol accepts them.
public enum StreamName {
    /// Longest name in UTF-8 bytes.
    public static let maxBytes = 256
    /// Names starting with this are the daemon's private streams ("~<connection id>.<tag>").
    public static let privatePrefix = "~"

    /// The private stream of connection `id` of a server whose `tag` was drawn at random when
    /// it started: never the name of an earlier process's private stream, whose text a new
    /// connection with the same number must not see (connection numbers restart at 1).
    static func privateStream(of id: UInt64, tag: UInt64) -> String {
        let digits = String(tag, radix: 16)
        return privatePrefix + String(id) + "." + String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Whether `name` is a private stream (of this process or an earlier one).
    static func isPrivate(_ name: String) -> Bool { name.hasPrefix(privatePrefix) }

    /// Why `name` is unusable as a client-chosen stream name, or nil when it is fine:
    /// 1...256 bytes of UTF-8 without control characters, line or paragraph separators or
    /// bidirectional controls (`Unicode.Scalar.altersDisplay`: names are echoed into other
    /// users' listings, terminals and logs), not starting with "~".
    public static func problem(with name: String, field: String) -> String? {
        let count = name.utf8.count
        if count == 0 { return "'\(field)' must not be empty" }
        if count > maxBytes { return "'\(field)' is \(count) bytes long; stream names are at most \(maxBytes) bytes" }
        for (i, scalar) in name.unicodeScalars.enumerated() where scalar.altersDisplay {
            return "'\(field)' contains \(scalar.codePointName) at character \(i), a control, line or paragraph separator or bidirectional control character; stream names are printable text"
        }
        if name.hasPrefix(privatePrefix) {
            return "'\(field)' starts with '\(privatePrefix)', which is reserved for connections' private streams; omit \"stream\" to use yours"
        }
        return nil
    }
}
