/// A piece of text the vocabulary lacks (under the `.error` unknown policy), which
/// `IncrementalEncoder.feed(_:skipping:)` left out instead of refusing the text.
public struct UnknownPiece: Sendable, Equatable {
    /// The piece: one character (char) or one word, space run or symbol (word). Invalid
    /// UTF-8 in the input is U+FFFD here, as it is to the tokenizer.
    public var text: String
    /// The tokenizer that cut it: `.char` or `.word` (byte vocabularies lack nothing).
    public var kind: TokenizerKind

    /// Memberwise.
    public init(text: String, kind: TokenizerKind) {
        self.text = text
        self.kind = kind
    }

    /// How errors name it: `character U+20AC '€'` or `word 'naïve'`.
    public var description: String {
        guard kind == .char, let scalar = text.unicodeScalars.first else { return "word \(Vocabulary.quoted(text))" }
        return "character \(Self.code(scalar)) \(Vocabulary.quoted(text))"
    }

    /// `U+0035`, `U+1F600`: at least four hex digits, as Unicode writes code points.
    static func code(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
