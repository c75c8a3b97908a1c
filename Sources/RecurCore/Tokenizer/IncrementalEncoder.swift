/// Encodes text that arrives in chunks of bytes (a socket, a pipe), emitting ids as soon as
/// they are certain: an incomplete UTF-8 sequence at the end of a chunk is held back (char,
/// word), and so is a word or space run, which the next chunk might continue (word).
///
/// For any split of `text` into chunks, the concatenation of every `feed` result and the
/// `finish` result equals `Tokenizer.encode(text)`, error offsets included. Invalid UTF-8 is
/// replaced by U+FFFD exactly as `String(decoding:as:)` does. After a thrown error the
/// encoder's state is unspecified: discard it. `feed(_:skipping:)` and `finish(skipping:)`
/// never throw: they leave out what the vocabulary lacks and report it (stdin mode).
public struct IncrementalEncoder: Sendable {
    /// The tokenizer whose vocabulary and unknown policy apply.
    public let tokenizer: Tokenizer
    /// Bytes of a UTF-8 sequence the last chunk ended in the middle of (at most 3).
    private var heldBytes: [UInt8] = []
    private var segmenter = WordSegmenter()
    /// Scalars (char) or pieces (word) emitted so far, for error offsets.
    private var offset = 0

    /// Bytes held back: an unfinished UTF-8 sequence, plus (word tokenizer) the unfinished word
    /// or space run that the next chunk may still extend (of a run longer than
    /// `maxPendingBytes - 3`, only its start, which stands for the whole overlong run).
    public var pendingByteCount: Int { heldBytes.count + segmenter.pending.count }

    /// The most bytes an encoder ever holds back: 3 of an unfinished UTF-8 sequence and, for
    /// the word tokenizer, 1028 of a run (a run longer than 1024 bytes is one unknown piece
    /// of which only the start is kept; docs/TOKENIZERS.md).
    public static let maxPendingBytes = WordSegmenter.maxPieceBytes + 4 + 3

    /// The held-back bytes themselves, in stream order: what a saved stream keeps so that
    /// `init(tokenizer:pending:)` can continue it. At most `maxPendingBytes`.
    public var pendingBytes: [UInt8] { segmenter.pending + heldBytes }

    /// Continues a stream whose encoder held `pending` (its `pendingBytes`) when it was saved.
    /// Held bytes saved by an older recurd, whose word runs had no bound, are accepted too: a
    /// run longer than the bound becomes the overlong run it would be now.
    /// - Throws: `.tokenization` if the bytes are not something an encoder holds back (they
    ///   would produce tokens at once), which means they did not come from `pendingBytes`.
    public init(tokenizer: Tokenizer, pending: [UInt8]) throws(RecurError) {
        self.init(tokenizer: tokenizer)
        guard !pending.isEmpty else { return }
        let ids = try feed(pending)
        guard ids.isEmpty else {
            throw .tokenization("\(pending.count) saved pending bytes are not an unfinished sequence or word of this tokenizer")
        }
        offset = 0
    }

    /// Starts a stream; sharing one `Tokenizer` between encoders avoids rebuilding its tables.
    public init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// Starts a stream with a tokenizer built for `vocabulary`.
    public init(vocabulary: Vocabulary) {
        self.init(tokenizer: Tokenizer(vocabulary))
    }

    /// Consumes the next chunk and returns the ids it completes.
    /// - Throws: `.tokenization` as `Tokenizer.encode` would, with offsets counted from the
    ///   first byte ever fed.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(RecurError) -> [Int32] {
        var refuse: [UnknownPiece]? = nil
        return try feed(bytes, unknown: &refuse)
    }

    /// Ends the stream: encodes held-back bytes (as U+FFFD) and the pending word run.
    public mutating func finish() throws(RecurError) -> [Int32] {
        var refuse: [UnknownPiece]? = nil
        return try finish(unknown: &refuse)
    }

    /// Like `feed`, but a piece the vocabulary lacks does not refuse the text: it is left out
    /// and appended to `skipped`, and the encoder goes on. The ids are exactly those of the
    /// other pieces, for any split of the text into chunks (the pieces are cut as they would
    /// be with nothing skipped, so leaving one out never changes its neighbours).
    public mutating func feed(_ bytes: some Collection<UInt8>, skipping skipped: inout [UnknownPiece]) -> [Int32] {
        var sink: [UnknownPiece]? = []
        defer { skipped += sink ?? [] }
        // Cannot throw: with a sink, unknown pieces are collected instead.
        return (try? feed(bytes, unknown: &sink)) ?? []
    }

    /// Like `finish`, skipping what the vocabulary lacks into `skipped`; see `feed(_:skipping:)`.
    public mutating func finish(skipping skipped: inout [UnknownPiece]) -> [Int32] {
        var sink: [UnknownPiece]? = []
        defer { skipped += sink ?? [] }
        return (try? finish(unknown: &sink)) ?? []
    }

    /// `unknown` nil: an unknown piece throws; else it is appended there and left out.
    private mutating func feed(_ bytes: some Collection<UInt8>, unknown: inout [UnknownPiece]?) throws(RecurError) -> [Int32] {
        if tokenizer.vocabulary.kind == .byte {
            return bytes.map { tokenizer.id(forByte: $0) }
        }
        var buffer = heldBytes
        buffer.append(contentsOf: bytes)
        let complete = Self.completePrefixLength(buffer)
        heldBytes = Array(buffer[complete...])
        return try encodeScalars(of: buffer[..<complete], flush: false, unknown: &unknown)
    }

    private mutating func finish(unknown: inout [UnknownPiece]?) throws(RecurError) -> [Int32] {
        guard tokenizer.vocabulary.kind != .byte else { return [] }
        let rest = heldBytes
        heldBytes = []
        return try encodeScalars(of: rest[...], flush: true, unknown: &unknown)
    }

    private mutating func encodeScalars(of bytes: ArraySlice<UInt8>, flush: Bool,
                                        unknown: inout [UnknownPiece]?) throws(RecurError) -> [Int32] {
        var ids: [Int32] = []
        let text = String(decoding: bytes, as: UTF8.self)
        switch tokenizer.vocabulary.kind {
        case .char:
            for scalar in text.unicodeScalars {
                do throws(RecurError) {
                    ids.append(try tokenizer.id(for: scalar, offset: offset))
                } catch {
                    guard unknown != nil else { throw error }
                    unknown!.append(UnknownPiece(text: String(scalar), kind: .char))
                }
                offset += 1
            }
        case .word:
            let tokenizer = self.tokenizer
            var offset = self.offset
            var segmenter = self.segmenter
            let skipping = unknown != nil
            var skipped: [UnknownPiece] = []
            defer { if skipping { unknown! += skipped } }
            let emit = { (piece: [UInt8], overlong: Bool) throws(RecurError) in
                do throws(RecurError) {
                    ids.append(try tokenizer.id(forPiece: piece, overlong: overlong, offset: offset))
                } catch {
                    guard skipping else { throw error }
                    // An overlong run is reported by its start (all the segmenter kept of it).
                    skipped.append(UnknownPiece(text: String(decoding: piece, as: UTF8.self) + (overlong ? "…" : ""), kind: .word))
                }
                offset += 1
            }
            for scalar in text.unicodeScalars { try segmenter.push(scalar, emit: emit) }
            if flush { try segmenter.finish(emit: emit) }
            self.segmenter = segmenter
            self.offset = offset
        case .byte:
            preconditionFailure("byte vocabularies do not decode scalars")
        }
        return ids
    }

    /// How many leading bytes of `bytes` can be decoded now: all of them, unless they end
    /// with a lead byte and continuation bytes that could still become a valid sequence.
    /// Cutting there decodes the same as the whole would: a lead byte always starts a new
    /// sequence (or error) in `String(decoding:)`, so nothing before it depends on it.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let end = bytes.count
        for back in 1...3 where back <= end {
            let start = end - back
            let lead = bytes[start]
            if lead & 0xC0 == 0x80 { continue }  // continuation byte: keep looking back
            let needed: Int
            switch lead {
            case 0xC2...0xDF: needed = 2
            case 0xE0...0xEF: needed = 3
            case 0xF0...0xF4: needed = 4
            default: return end  // ASCII or a byte that can never start a sequence
            }
            guard back < needed else { return end }
            if back >= 2 {
                // The second byte's allowed range depends on the lead (no overlongs, no
                // surrogates, nothing above U+10FFFF); outside it the sequence is already invalid.
                let second = bytes[start + 1]
                let range: ClosedRange<UInt8> = switch lead {
                case 0xE0: 0xA0...0xBF
                case 0xED: 0x80...0x9F
                case 0xF0: 0x90...0xBF
                case 0xF4: 0x80...0x8F
                default: 0x80...0xBF
                }
                guard range.contains(second) else { return end }
            }
            return start
        }
        return end
    }
}
