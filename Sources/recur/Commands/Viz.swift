import ArgumentParser
import RecurCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `recur viz MODEL FILE --out report.html`: a static page showing what a model does on a text.
struct Viz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "viz",
        abstract: "Write a self-contained HTML report of what a model does on a text.",
        discussion: """
            The report (one file: inline CSS, SVG and a little script; it loads nothing) shows \
            the text coloured by surprisal with the top guesses on hover (each token's \
            log-probability is the one 'recur eval --per-token' prints); for each of inside \
            quotes, inside brackets, position in the line and start of a word, the hidden unit \
            most correlated with it, as a heat map; gate saturation per layer (LSTM, GRU); the \
            memory reach, the gradient norm of log p(x_t) with respect to the input at t-d for \
            each distance d, averaged over positions; and with --metrics, the training and \
            validation loss curves.
            """)

    @Argument(help: "The model file (.safetensors).")
    var model: String

    @Argument(help: "The text to analyse, read as UTF-8 (raw bytes for byte models); '-' reads stdin.")
    var file: String

    @Option(help: ArgumentHelp("Where to write the HTML report.", valueName: "report.html"))
    var out: String

    @Option(help: ArgumentHelp("The training metrics log (MODEL.metrics.jsonl, written by 'recur train') to draw the loss curves from.", valueName: "file"))
    var metrics: String?

    @Option(help: ArgumentHelp("Analyse at most the first N tokens of the text.", valueName: "n"))
    var maxTokens = 2000

    @Option(help: ArgumentHelp("How many guesses to show on hover.", valueName: "k"))
    var topK = 5

    @Option(help: ArgumentHelp("The largest distance d of the memory reach.", valueName: "d"))
    var maxDistance = 64

    func validate() throws {
        guard maxTokens >= 2 else { throw ValidationError("--max-tokens must be at least 2, got \(maxTokens)") }
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1, got \(topK)") }
        guard (1...256).contains(maxDistance) else { throw ValidationError("--max-distance must be in 1...256, got \(maxDistance)") }
    }

    func run() throws {
        let loaded = try LoadedModel(path: model)
        let vocabulary = loaded.model.vocabulary
        let tokenizer = Tokenizer(vocabulary)
        let source = file == "-" ? "standard input" : "'\(file)'"
        var tokens = try tokenizer.encode(bytes: FileInput.contents(of: file, what: "text"), source: source)
        guard tokens.count >= 2 else {
            throw CLIError("\(source) has \(tokens.count) token\(tokens.count == 1 ? "" : "s"); the report needs at least 2 (the first token has no prediction)")
        }
        let curves = try metrics.map { path throws(CLIError) in
            try MetricsCurves(bytes: FileInput.contents(of: path, what: "metrics file"), path: path)
        }
        try FileInput.checkWritable(out, what: "report")
        var truncatedFrom: Int?
        if tokens.count > maxTokens {
            logger.notice("\(source) has \(tokens.count) tokens; the report covers the first \(maxTokens) (see --max-tokens)")
            truncatedFrom = tokens.count
            tokens = Array(tokens.prefix(maxTokens))
        }

        let pieces = tokens.map { Self.piece($0, vocabulary: vocabulary, tokenizer: tokenizer) }
        let trace = ActivationTrace(model: loaded.model, tokens: tokens)
        let report = VizReport(
            modelName: model, textName: file == "-" ? "standard input" : file,
            config: loaded.model.config, vocabulary: vocabulary, pieces: pieces,
            scored: Evaluator(model: loaded.model).scoreWithTopK(tokens, k: topK),
            features: TextFeature.allCases.map { ($0, trace.strongestUnit(for: $0.values(pieces))) },
            saturation: trace.gateSaturation(),
            reach: MemoryReach(model: loaded.model, tokens: tokens, trace: trace, maxDistance: maxDistance,
                               maxPositions: Self.reachPositions(loaded.model.config, distance: maxDistance)),
            metrics: curves, truncatedFrom: truncatedFrom)
        try Self.write(report.render(), to: out)
        logger.info("wrote \(out)")
    }

    /// How many positions the memory reach averages over: 64, fewer when the batched windows'
    /// widest buffers (D·P rows of V logits or G·H gates) would pass 2²⁵ floats (128 MB).
    static func reachPositions(_ config: ModelConfig, distance D: Int) -> Int {
        let width = max(config.vocabularySize, config.cell.gateCount * config.hiddenSize)
        return max(1, min(64, (1 << 25) / (D * width)))
    }

    /// The text a token stands for: the piece itself, or for byte models the character when it
    /// is printable ASCII or a newline or tab, else its \xNN escape.
    static func piece(_ id: Int32, vocabulary: Vocabulary, tokenizer: Tokenizer) -> String {
        guard vocabulary.kind == .byte else { return tokenizer.decode([id]) }
        if let byte = UInt8(vocabulary.tokens[Int(id)]), byte == 0x0A || byte == 0x09 {
            return String(UnicodeScalar(byte))
        }
        return vocabulary.display(id)
    }

    /// Writes `text` to `path` in full, or throws a `CLIError` naming it.
    static func write(_ text: String, to path: String) throws(CLIError) {
        guard let file = fopen(path, "w") else {
            throw CLIError("cannot write the report '\(path)': \(String(cString: strerror(errno)))")
        }
        var text = text
        let written = text.withUTF8 { fwrite($0.baseAddress, 1, $0.count, file) }
        let closed = fclose(file)
        guard written == text.utf8.count, closed == 0 else {
            throw CLIError("cannot write the report '\(path)': \(String(cString: strerror(errno)))")
        }
    }
}
