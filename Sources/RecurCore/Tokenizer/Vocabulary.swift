/// How text becomes token ids. See docs/TOKENIZERS.md for the exact rules.
public enum TokenizerKind: String, Sendable, Codable, CaseIterable {
    /// One token per Unicode scalar.
    case char
    /// One token per UTF-8 byte; the vocabulary is always the 256 byte values.
    case byte
    /// Runs of letters/digits, runs of white space, and single other scalars.
    case word
}

/// What encoding does with a piece of text that is not in the vocabulary.
public enum UnknownPolicy: String, Sendable, Codable, CaseIterable {
    /// Refuse the text with an error that names the offending piece and its offset.
    case error
    /// Map it to the vocabulary's reserved unknown token (`Vocabulary.unknownToken`).
    case replace
}

/// The model's token inventory: sorted, stored in the model file, with an explicit
/// unknown-token policy. Token ids index `tokens`.
public struct Vocabulary: Sendable, Equatable {
    public var kind: TokenizerKind
    /// Sorted ascending by Unicode scalar values (bytes: 0...255 in order). For `.byte` each
    /// entry is the byte's value written as a decimal string ("0" ... "255").
    public var tokens: [String]
    public var unknownPolicy: UnknownPolicy

    /// The reserved token that unknown pieces map to under `.replace`.
    public static let unknownToken = "<unk>"

    public var count: Int { tokens.count }

    public init(kind: TokenizerKind, tokens: [String], unknownPolicy: UnknownPolicy) {
        self.kind = kind
        self.tokens = tokens
        self.unknownPolicy = unknownPolicy
    }
}
