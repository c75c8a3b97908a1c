import RecurCore

/// Hashes that tell whether a stored state belongs to the running model. A state is a function
/// of the model and the tokens, so a state saved under another model must be recomputed
/// (`model` differs) and tokens logged under another vocabulary mean nothing (`vocabulary`
/// differs). FNV-1a, 64 bits: stable across processes and platforms, unlike `Hasher`.
public struct ModelFingerprint: Sendable, Equatable {
    /// Config, vocabulary and every parameter's bits.
    public var model: UInt64
    /// The tokenizer kind, unknown policy and the tokens in id order.
    public var vocabulary: UInt64

    /// Memberwise (tests).
    public init(model: UInt64, vocabulary: UInt64) {
        self.model = model
        self.vocabulary = vocabulary
    }

    /// The fingerprint of `model` (reads every parameter once).
    public init(of model: Model) {
        var v = FNV1a()
        v.add(string: model.vocabulary.kind.rawValue)
        v.add(string: model.vocabulary.unknownPolicy.rawValue)
        v.add(UInt64(model.vocabulary.count))
        for token in model.vocabulary.tokens { v.add(string: token) }
        vocabulary = v.value
        var m = FNV1a()
        let c = model.config
        m.add(string: c.cell.rawValue)
        m.add(string: c.nonlinearity.rawValue)
        for n in [c.vocabularySize, c.hiddenSize, c.layers, c.embeddingSize] { m.add(UInt64(n)) }
        m.add(vocabulary)
        for p in model.parameters { m.add32(p.bitPattern) }
        self.model = m.value
    }

    /// `model` as 16 hex digits, for messages.
    public var modelHex: String { Self.hex(model) }

    /// 16 hex digits.
    public static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// 64-bit FNV-1a over bytes.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }

    mutating func add(_ word: UInt64) {
        for i in 0..<8 { add(byte: UInt8(truncatingIfNeeded: word >> (8 * UInt64(i)))) }
    }

    mutating func add32(_ word: UInt32) {
        for i in 0..<4 { add(byte: UInt8(truncatingIfNeeded: word >> (8 * UInt32(i)))) }
    }

    /// Length first, so that ("ab","c") and ("a","bc") differ.
    mutating func add(string: String) {
        add(UInt64(string.utf8.count))
        for byte in string.utf8 { add(byte: byte) }
    }
}
