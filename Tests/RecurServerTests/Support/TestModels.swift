import RecurCore

/// Tiny random models: fast to step, with vocabularies that exercise the tokenizers
/// (multi-byte characters, so chunk boundaries can fall inside a UTF-8 sequence).
enum TestModels {
    /// Every character the char model knows.
    static let alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-/\n\té€😀"

    /// A char LSTM (hidden 16) over `alphabet`; characters outside it are an error.
    static let charLSTM: Model = {
        let vocabulary = try! Vocabulary.build(kind: .char, corpus: alphabet, unknownPolicy: .error)
        let config = ModelConfig(cell: .lstm, vocabularySize: vocabulary.count, hiddenSize: 16, layers: 2, embeddingSize: 8)
        var model = Model.random(config: config, vocabulary: vocabulary, seed: 11)
        model.provenance = ["command": "test fixture", "seed": "11"]
        return model
    }()

    /// A byte GRU (hidden 8): every byte is a token.
    static let byteGRU: Model = {
        let vocabulary = try! Vocabulary.build(kind: .byte, corpus: "", unknownPolicy: nil)
        let config = ModelConfig(cell: .gru, vocabularySize: vocabulary.count, hiddenSize: 8, layers: 1)
        return Model.random(config: config, vocabulary: vocabulary, seed: 5)
    }()

    /// A word RNN over a small corpus; unknown words become <unk>.
    static let wordRNN: Model = {
        let corpus = "the cat sat on the mat . the dog sat on the log .\n"
        let vocabulary = try! Vocabulary.build(kind: .word, corpus: corpus, unknownPolicy: .replace)
        let config = ModelConfig(cell: .rnn, vocabularySize: vocabulary.count, hiddenSize: 8, layers: 1, embeddingSize: 4)
        return Model.random(config: config, vocabulary: vocabulary, seed: 3)
    }()

    /// Random text over the char model's alphabet.
    static func randomText(length: Int, seed: UInt64) -> String {
        var rng = SeededGenerator(seed: seed)
        let scalars = Array(alphabet.unicodeScalars)
        var text = String.UnicodeScalarView()
        for _ in 0..<length { text.append(scalars[Int(rng.next() % UInt64(scalars.count))]) }
        return String(text)
    }

    /// What `recur eval --per-token` computes: each token with its log-probability (nil for the first).
    static func reference(_ text: String, model: Model) -> [(token: Int32, logprob: Float?)] {
        let tokens = try! Tokenizer(model.vocabulary).encode(text)
        var logprobs = [Float?](repeating: nil, count: tokens.count)
        _ = Evaluator(model: model).score(tokens) { offset, lp in logprobs[offset - 1] = lp }
        return tokens.enumerated().map { ($0.element, logprobs[$0.offset]) }
    }
}
