extension Vocabulary {
    /// Checks what a `Tokenizer` relies on: tokens strictly ascending in scalar order (so
    /// sorted and duplicate-free), each one a piece its tokenizer can produce, the 256 bytes
    /// for `.byte`, and `<unk>` present under `.replace`.
    /// - Throws: `.invalidConfiguration` naming the first offending token.
    public func validate() throws(RecurError) {
        if let problem = validationProblem { throw .invalidConfiguration(problem) }
    }

    /// The first problem `validate()` would report, as a sentence fragment.
    var validationProblem: String? {
        guard !tokens.isEmpty else { return "the vocabulary is empty" }
        if kind == .byte {
            guard tokens.count == 256 else {
                return "a byte vocabulary must have 256 tokens, not \(tokens.count)"
            }
            for (i, token) in tokens.enumerated() where token != String(i) {
                return "byte token \(i) is \(Self.quoted(token)) instead of \"\(i)\" (a byte vocabulary is "
                    + "\"0\" ... \"255\" in numeric order, token id = byte value, not sorted as strings)"
            }
            return nil
        }
        for i in tokens.indices {
            let token = tokens[i]
            if i > 0, !Self.scalarOrder(tokens[i - 1], token) {
                return tokens[i - 1].utf8.elementsEqual(token.utf8)
                    ? "token \(Self.quoted(token)) appears twice"
                    : "tokens are not sorted by Unicode scalar value: \(Self.quoted(tokens[i - 1])) comes before \(Self.quoted(token))"
            }
            if token == Self.unknownToken { continue }
            switch kind {
            case .char:
                guard token.unicodeScalars.count == 1 else {
                    return "char token \(i) \(Self.quoted(token)) is not a single Unicode scalar"
                }
            case .word:
                guard token.utf8.count <= WordSegmenter.maxPieceBytes else {
                    return "word token \(i) is \(token.utf8.count) bytes long; a word piece has at most \(WordSegmenter.maxPieceBytes)"
                }
                guard Self.isSingleWordPiece(token) else {
                    return "word token \(i) \(Self.quoted(token)) is not a single word, space run or symbol"
                }
            case .byte:
                break
            }
        }
        if unknownPolicy == .replace, !tokens.contains(Self.unknownToken) {
            return "the unknown policy is 'replace' but the vocabulary has no \(Self.unknownToken) token"
        }
        return nil
    }

    private static func isSingleWordPiece(_ token: String) -> Bool {
        var pieces = 0
        var segmenter = WordSegmenter()
        let count = { (_: [UInt8], _: Bool) in pieces += 1 }
        for scalar in token.unicodeScalars { segmenter.push(scalar, emit: count) }
        segmenter.finish(emit: count)
        return pieces == 1
    }

    /// A token in quotes, escaped for an error message.
    static func quoted(_ token: String) -> String {
        "'" + escapedForDisplay(token) + "'"
    }

    /// `token` with control characters made visible: `\n`, `\t`, `\r`, and `\u{..}` for the
    /// rest (error messages here, `recur connect`'s readable output).
    public static func escapedForDisplay(_ token: String) -> String {
        var out = ""
        for scalar in token.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.properties.generalCategory == .control {
                    out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
