/// Turns text into token ids and back for one vocabulary. Building one costs O(V) (plus a
/// 256 KB table for char vocabularies); build it once and reuse it, copies share storage.
///
/// Encoding never crashes: a piece the vocabulary lacks is either an error naming the piece
/// and its offset (`.error`) or the `<unk>` id (`.replace`). Decoding accepts any id; ids out
/// of range decode as U+FFFD.
public struct Tokenizer: Sendable {
    /// The vocabulary this tokenizer encodes into; ids index `vocabulary.tokens`.
    public let vocabulary: Vocabulary

    /// char: the id of every scalar below 0x10000, -1 when absent. Empty for other kinds.
    private let bmpIds: [Int32]
    /// char: ids of scalars above the Basic Multilingual Plane.
    private let astralIds: [UInt32: Int32]
    /// byte: the id of each byte value.
    private let byteIds: [Int32]
    /// word: ids keyed by the piece's UTF-8 bytes (never `String`: Swift's `String ==` merges
    /// canonically equivalent spellings, which are distinct tokens here).
    private let wordIds: [[UInt8]: Int32]
    /// The `<unk>` id when the policy is `.replace`; nil under `.error`.
    let unknownId: Int32?
    /// (V): UTF-8 bytes each token decodes to (for `.byte`, the one byte it stands for).
    private let tokenBytes: [[UInt8]]

    /// - Precondition: the vocabulary passes `validate()` as far as lookups need: under
    ///   `.replace` it has `<unk>`, and `.byte` tokens are "0"..."255". Vocabularies from
    ///   `Vocabulary.build` and from model files always do.
    public init(_ vocabulary: Vocabulary) {
        precondition(vocabulary.tokens.count <= Int(Int32.max), "vocabulary of \(vocabulary.tokens.count) tokens does not fit Int32 ids")
        self.vocabulary = vocabulary
        var bmp: [Int32] = []
        var astral: [UInt32: Int32] = [:]
        var bytes: [Int32] = []
        var words: [[UInt8]: Int32] = [:]
        var decoded: [[UInt8]] = []
        decoded.reserveCapacity(vocabulary.count)
        switch vocabulary.kind {
        case .char:
            bmp = Array(repeating: -1, count: 0x10000)
            for (i, token) in vocabulary.tokens.enumerated() {
                decoded.append(Array(token.utf8))
                let scalars = token.unicodeScalars
                guard scalars.count == 1, let v = scalars.first?.value else { continue }
                if v < 0x10000 { bmp[Int(v)] = Int32(i) } else { astral[v] = Int32(i) }
            }
        case .byte:
            bytes = Array(repeating: -1, count: 256)
            for (i, token) in vocabulary.tokens.enumerated() {
                let value = UInt8(token)
                precondition(value != nil, "byte token \(i) is '\(token)', not a decimal byte value")
                bytes[Int(value!)] = Int32(i)
                decoded.append([value!])
            }
            precondition(!bytes.contains(-1), "a byte vocabulary must contain all 256 byte values")
        case .word:
            for (i, token) in vocabulary.tokens.enumerated() {
                let utf8 = Array(token.utf8)
                decoded.append(utf8)
                words[utf8] = Int32(i)
            }
        }
        if vocabulary.unknownPolicy == .replace, vocabulary.kind != .byte {
            let index = vocabulary.tokens.firstIndex(of: Vocabulary.unknownToken)
            precondition(index != nil, "unknown policy 'replace' needs a \(Vocabulary.unknownToken) token in the vocabulary")
            unknownId = Int32(index!)
        } else {
            unknownId = nil
        }
        bmpIds = bmp
        astralIds = astral
        byteIds = bytes
        wordIds = words
        tokenBytes = decoded
    }

    // MARK: Encoding

    /// The ids of `text`: one per scalar (char), per UTF-8 byte (byte) or per piece (word).
    /// - Throws: `.tokenization` for the first piece the vocabulary lacks under `.error`.
    public func encode(_ text: String) throws(RecurError) -> [Int32] {
        var ids: [Int32] = []
        switch vocabulary.kind {
        case .byte:
            ids.reserveCapacity(text.utf8.count)
            for byte in text.utf8 { ids.append(byteIds[Int(byte)]) }
        case .char:
            ids.reserveCapacity(text.utf8.count)
            var offset = 0
            for scalar in text.unicodeScalars {
                ids.append(try id(for: scalar, offset: offset))
                offset += 1
            }
        case .word:
            var offset = 0
            var segmenter = WordSegmenter()
            let emit = { (piece: [UInt8], overlong: Bool) throws(RecurError) in
                ids.append(try id(forPiece: piece, overlong: overlong, offset: offset))
                offset += 1
            }
            for scalar in text.unicodeScalars { try segmenter.push(scalar, emit: emit) }
            try segmenter.finish(emit: emit)
        }
        return ids
    }

    /// The id of one byte (byte vocabularies only).
    @inline(__always)
    func id(forByte byte: UInt8) -> Int32 { byteIds[Int(byte)] }

    /// The id of one scalar (char vocabularies), resolving unknowns by the policy.
    @inline(__always)
    func id(for scalar: Unicode.Scalar, offset: Int) throws(RecurError) -> Int32 {
        let v = scalar.value
        let found = v < 0x10000 ? bmpIds[Int(v)] : (astralIds[v] ?? -1)
        if found >= 0 { return found }
        if let unknownId { return unknownId }
        let hex = String(v, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        throw .tokenization("character \(code) \(Vocabulary.quoted(String(scalar))) at offset \(offset) is not in the model's vocabulary")
    }

    /// The id of one word piece given by its UTF-8 bytes, resolving unknowns by the policy.
    /// An overlong piece (a run of more than `WordSegmenter.maxPieceBytes` bytes, of which
    /// `piece` is the start) is in no vocabulary.
    @inline(__always)
    func id(forPiece piece: [UInt8], overlong: Bool = false, offset: Int) throws(RecurError) -> Int32 {
        if !overlong, let found = wordIds[piece] { return found }
        if let unknownId { return unknownId }
        guard overlong else {
            let text = String(decoding: piece, as: UTF8.self)
            throw .tokenization("word \(Vocabulary.quoted(text)) at offset \(offset) is not in the model's vocabulary")
        }
        var start = ""
        start.unicodeScalars.append(contentsOf: String(decoding: piece, as: UTF8.self).unicodeScalars.prefix(16))
        throw .tokenization("the word starting \(Vocabulary.quoted(start))… at offset \(offset) is longer than \(WordSegmenter.maxPieceBytes) bytes, so it is not in the model's vocabulary")
    }

    // MARK: Decoding

    /// The text of `ids`. Byte tokens are joined and decoded as UTF-8, invalid sequences
    /// becoming U+FFFD; `<unk>` decodes as the literal text "<unk>".
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count)
        for id in ids {
            if id >= 0, Int(id) < tokenBytes.count {
                bytes.append(contentsOf: tokenBytes[Int(id)])
            } else {
                bytes.append(contentsOf: [0xEF, 0xBF, 0xBD])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A printable form of one token; see `Vocabulary.display(_:)`.
    public func display(_ id: Int32) -> String { vocabulary.display(id) }
}

extension Vocabulary {
    /// Encodes `text` with a throwaway `Tokenizer`; build a `Tokenizer` to encode repeatedly.
    public func encode(_ text: String) throws(RecurError) -> [Int32] {
        try Tokenizer(self).encode(text)
    }

    /// Decodes `ids` with a throwaway `Tokenizer`; see `Tokenizer.decode(_:)`.
    public func decode(_ ids: [Int32]) -> String {
        Tokenizer(self).decode(ids)
    }

    /// A printable form of one token, for listings and debugging: char and word tokens as
    /// they are, but newline as `\n`, tab as `\t` and other control characters as `\u{..}`;
    /// byte tokens as the character when printable ASCII, else `\xNN`. An id outside the
    /// vocabulary shows as `<invalid id N>`.
    public func display(_ id: Int32) -> String {
        guard id >= 0, Int(id) < tokens.count else { return "<invalid id \(id)>" }
        let token = tokens[Int(id)]
        guard kind == .byte else { return Self.escapedForDisplay(token) }
        guard let byte = UInt8(token) else { return Self.escapedForDisplay(token) }
        if (0x20...0x7E).contains(byte) { return String(UnicodeScalar(byte)) }
        let hex = String(byte, radix: 16, uppercase: true)
        return "\\x" + (hex.count == 1 ? "0" : "") + hex
    }
}
