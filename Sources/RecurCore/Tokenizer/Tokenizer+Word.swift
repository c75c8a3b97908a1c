/// The word tokenizer's three kinds of scalar. A piece is a maximal run of `.word` scalars,
/// a maximal run of `.space` scalars, or a single `.other` scalar.
enum WordScalarClass: UInt8, Sendable {
    /// Letters and digits: Unicode `Alphabetic`, any scalar with a numeric type, and `_`.
    case word
    /// Unicode `White_Space`.
    case space
    /// Everything else (punctuation, symbols, controls); each one is its own piece.
    case other

    /// Classes of the 128 ASCII scalars, precomputed because they dominate real text.
    private static let asciiTable: [WordScalarClass] = (0..<128).map {
        classify(slow: Unicode.Scalar(UInt8($0)))
    }

    @inline(__always)
    static func of(_ scalar: Unicode.Scalar) -> WordScalarClass {
        scalar.value < 128 ? asciiTable[Int(scalar.value)] : classify(slow: scalar)
    }

    private static func classify(slow scalar: Unicode.Scalar) -> WordScalarClass {
        if scalar == "_" { return .word }
        let properties = scalar.properties
        if properties.isAlphabetic || properties.numericType != nil { return .word }
        if properties.isWhitespace { return .space }
        return .other
    }
}

/// Cuts a stream of scalars into word-tokenizer pieces, one scalar at a time, so that the
/// whole-text encoder, the vocabulary builder and the incremental encoder share one rule.
/// A run is held until a scalar of another class arrives (it might continue), `finish` flushes.
///
/// A run longer than `maxPieceBytes` is one piece that no vocabulary holds (validation
/// refuses longer tokens): it is emitted as overlong, and only its first bytes are kept, so a
/// run of any length costs bounded memory and linear time, and the held-back bytes that a
/// saved stream keeps (`pending`) never exceed `maxPieceBytes + 4`.
struct WordSegmenter {
    /// The longest piece, in UTF-8 bytes, that is looked up in a vocabulary; a longer run is
    /// an overlong piece (`<unk>`, or an error under the `error` policy).
    static let maxPieceBytes = 1024

    /// UTF-8 bytes of the pending run (empty when nothing is pending); for an overlong run,
    /// its first scalars up to and including the one that crossed `maxPieceBytes`.
    private(set) var pending: [UInt8] = []
    private var pendingClass: WordScalarClass = .other

    init() {
        pending.reserveCapacity(64)
    }

    /// Whether the pending run is longer than `maxPieceBytes` (its bytes are no longer kept).
    var pendingIsOverlong: Bool { pending.count > Self.maxPieceBytes }

    /// Adds one scalar; calls `emit` with the UTF-8 bytes of every piece it completes, and
    /// whether the piece is overlong (then the bytes are only its start).
    /// `emit` gets the segmenter's own buffer: looking it up costs no allocation.
    @inline(__always)
    mutating func push<E: Error>(_ scalar: Unicode.Scalar,
                                 emit: ([UInt8], _ overlong: Bool) throws(E) -> Void) throws(E) {
        let cls = WordScalarClass.of(scalar)
        if cls == pendingClass, cls != .other, !pending.isEmpty {
            if !pendingIsOverlong { Self.appendUTF8(scalar, to: &pending) }
            return
        }
        if !pending.isEmpty {
            try emit(pending, pendingIsOverlong)
            pending.removeAll(keepingCapacity: true)
        }
        Self.appendUTF8(scalar, to: &pending)
        pendingClass = cls
        if cls == .other {
            try emit(pending, false)
            pending.removeAll(keepingCapacity: true)
        }
    }

    /// Emits the pending run, if any.
    mutating func finish<E: Error>(emit: ([UInt8], _ overlong: Bool) throws(E) -> Void) throws(E) {
        if !pending.isEmpty {
            try emit(pending, pendingIsOverlong)
            pending.removeAll(keepingCapacity: true)
        }
    }

    @inline(__always)
    static func appendUTF8(_ scalar: Unicode.Scalar, to bytes: inout [UInt8]) {
        let v = scalar.value
        switch v {
        case 0..<0x80:
            bytes.append(UInt8(v))
        case 0x80..<0x800:
            bytes.append(UInt8(0xC0 | (v >> 6)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        case 0x800..<0x10000:
            bytes.append(UInt8(0xE0 | (v >> 12)))
            bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        default:
            bytes.append(UInt8(0xF0 | (v >> 18)))
            bytes.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        }
    }
}
