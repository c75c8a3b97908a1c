import ArgumentParser
import RecurCore

/// `recur sample MODEL`: generate text, streamed as it is drawn.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate text from a model; prints the prime, then each token as it is drawn.")

    @Argument(help: "The model file (.safetensors).")
    var model: String

    @Option(help: ArgumentHelp("Text to start from (default: a newline if the vocabulary has one, else the first token).", valueName: "text"))
    var prime: String?

    @Option(help: ArgumentHelp("How many tokens to generate.", valueName: "n"))
    var length = 500

    @Option(help: ArgumentHelp("Sampling temperature: below 1 is more conservative, above 1 more varied; 0 always takes the most probable token.", valueName: "t"))
    var temperature: Float = 1.0

    @Option(name: .customLong("top-k"), help: ArgumentHelp("Sample only among the K most probable tokens (default: all).", valueName: "k"))
    var topK: Int?

    @Option(help: ArgumentHelp("Random seed; the same seed, model and options give the same text (default: a random seed, shown with RECUR_LOG_LEVEL=debug).", valueName: "n"))
    var seed: UInt64?

    @Option(help: ArgumentHelp("The weights' number format for the products: fp32 (the model as trained), bf16 or int8 (smaller, approximate: a warning says so; docs/PERFORMANCE.md has the measured cost). The file stays fp32.", valueName: "precision"))
    var precision: Precision = .fp32

    func validate() throws {
        guard length >= 0 else { throw ValidationError("--length must be 0 or more, got \(length)") }
        guard temperature >= 0, temperature.isFinite else {
            throw ValidationError("--temperature must be 0 (greedy) or a positive number, got \(temperature)")
        }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1, got \(topK)") }
        if let prime, prime.isEmpty {
            throw ValidationError("--prime must not be empty; leave it out to start from a newline")
        }
    }

    func run() throws {
        let loaded = try LoadedModel(path: model)
        let vocabulary = loaded.model.vocabulary
        let tokenizer = Tokenizer(vocabulary)

        let primeIds: [Int32]
        let primeText: [UInt8]
        if let prime {
            primeIds = try tokenizer.encode(bytes: Array(prime.utf8), source: "the --prime text")
            primeText = Array(prime.utf8)
            guard !primeIds.isEmpty else { throw CLIError("the --prime text encodes to no tokens") }
        } else {
            let newline = vocabulary.kind == .byte
                ? Int32(10)
                : vocabulary.tokens.firstIndex(of: "\n").map { Int32($0) }
            primeIds = [newline ?? 0]
            primeText = bytes(of: primeIds[0], vocabulary, tokenizer)
        }
        let seed = self.seed ?? UInt64.random(in: 0...UInt64.max)
        logger.debug("sampling with --seed \(seed)")

        let out = StandardOutput()
        out.write(bytes: primeText)
        out.flush()
        if let warning = precision.warning { logger.warning("\(warning)") }
        Sampler(model: loaded.model, seed: seed, precision: precision).generate(
            prime: primeIds, length: length, temperature: temperature, topK: topK
        ) { token in
            out.write(bytes: bytes(of: token, vocabulary, tokenizer))
            out.flush()
        }
        // Leave the shell prompt on a line of its own, but keep piped output exact.
        if StandardOutput.isTerminal { out.write("\n") }
        out.flush()
    }

    /// What one token prints as: the byte itself for byte models (a character split over
    /// several tokens comes out whole), the token's text otherwise.
    private func bytes(of token: Int32, _ vocabulary: Vocabulary, _ tokenizer: Tokenizer) -> [UInt8] {
        if vocabulary.kind == .byte, let byte = UInt8(vocabulary.tokens[Int(token)]) { return [byte] }
        return Array(tokenizer.decode([token]).utf8)
    }
}
