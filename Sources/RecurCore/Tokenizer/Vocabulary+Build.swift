extension Vocabulary {
    /// The default unknown-token policy of each tokenizer: a char model refuses characters it
    /// never saw (they are usually typos in the prompt), a word model cannot hope to know
    /// every word, so it maps them to `<unk>`. Byte vocabularies are complete; the policy is moot.
    public static func defaultUnknownPolicy(for kind: TokenizerKind) -> UnknownPolicy {
        switch kind {
        case .char, .byte: .error
        case .word: .replace
        }
    }

    /// The order of every vocabulary: lexicographic by Unicode scalar values, which is the
    /// same as lexicographic by UTF-8 bytes (and as Python's `sorted` on `str`). Swift's own
    /// `String <` compares canonical equivalents as equal, so it must not be used here.
    public static func scalarOrder(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// Builds the vocabulary of `kind` from a training corpus (see docs/TOKENIZERS.md).
    ///
    /// - char: the distinct Unicode scalars of `corpus`, sorted by value (plus `<unk>` under
    ///   `.replace`); equal to Python's `sorted(set(text))`.
    /// - byte: always the 256 tokens "0" ... "255"; `corpus` and `maxWords` are ignored.
    /// - word: the `maxWords` most frequent pieces with at least `minCount` occurrences
    ///   (ties go to the piece that sorts first), plus `<unk>`, sorted.
    ///
    /// - Parameter unknownPolicy: nil picks `defaultUnknownPolicy(for: kind)`.
    /// - Throws: `.invalidData` for an empty corpus (char, word) or a corpus without any
    ///   word that reaches `minCount`; `.invalidConfiguration` for `maxWords < 1` or `minCount < 1`.
    public static func build(kind: TokenizerKind, corpus: String, unknownPolicy: UnknownPolicy?,
                             maxWords: Int = 20000, minCount: Int = 1) throws(RecurError) -> Vocabulary {
        let policy = unknownPolicy ?? defaultUnknownPolicy(for: kind)
        switch kind {
        case .byte:
            return Vocabulary(kind: .byte, tokens: (0..<256).map(String.init), unknownPolicy: policy)
        case .char:
            var seen = Set<UInt32>()
            for scalar in corpus.unicodeScalars { seen.insert(scalar.value) }
            guard !seen.isEmpty else { throw .invalidData("the corpus is empty, so it has no characters to build a vocabulary from") }
            var tokens = seen.sorted().map { String(Unicode.Scalar($0)!) }
            if policy == .replace {
                tokens.append(unknownToken)
                tokens.sort(by: scalarOrder)
            }
            return Vocabulary(kind: .char, tokens: tokens, unknownPolicy: policy)
        case .word:
            guard maxWords >= 1 else { throw .invalidConfiguration("the word limit \(maxWords) must be at least 1") }
            guard minCount >= 1 else { throw .invalidConfiguration("the minimum word count \(minCount) must be at least 1") }
            guard !corpus.isEmpty else { throw .invalidData("the corpus is empty, so it has no words to build a vocabulary from") }
            var counts: [[UInt8]: Int] = [:]
            var segmenter = WordSegmenter()
            // An overlong run is no token (validation refuses them): it stays unknown.
            let count = { (piece: [UInt8], overlong: Bool) in if !overlong { counts[piece, default: 0] += 1 } }
            for scalar in corpus.unicodeScalars { segmenter.push(scalar, emit: count) }
            segmenter.finish(emit: count)
            var kept = counts.filter { $0.value >= minCount }.map { (bytes: $0.key, count: $0.value) }
            guard !kept.isEmpty else {
                throw .invalidData("no word occurs at least \(minCount) times in the corpus")
            }
            kept.sort { $0.count != $1.count ? $0.count > $1.count : $0.bytes.lexicographicallyPrecedes($1.bytes) }
            var pieces = kept.prefix(maxWords).map(\.bytes)
            pieces.append(Array(unknownToken.utf8))
            pieces.sort { $0.lexicographicallyPrecedes($1) }
            return Vocabulary(kind: .word, tokens: pieces.map { String(decoding: $0, as: UTF8.self) },
                              unknownPolicy: policy)
        }
    }
}
