import ArgumentParser
import Logging
import RecurCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `recur eval MODEL FILE`: how well a model predicts a text, in the units of KenLM's `query`.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score a text with a model: tokens, loss (nats/token), bits/token, perplexity.",
        discussion: """
            The text is scored as one stream from the zero state. The first token has no \
            prediction, so N tokens give N-1 scored ones; the loss is their mean negative \
            log-probability. With --per-token, each scored token gets a line first: its offset \
            (counting tokens from 1, so the first scored token is 2), the token, and its natural \
            log-probability. In JSON the token is its text (byte models: the character when the \
            byte is text on its own, printable ASCII, tab, newline or carriage return, else \
            \\xNN) and "tid" its vocabulary id, as recurd's events carry them.
            """)

    @Argument(help: "The model file (.safetensors).")
    var model: String

    @Argument(help: "The text to score, read as UTF-8 (raw bytes for byte models); '-' reads stdin.")
    var file: String

    @Flag(help: "Print JSON: one object per scored token with --per-token, then exactly one summary object {\"tokens\",\"loss_nats\",\"bits_per_token\",\"perplexity\"}.")
    var json = false

    @Flag(help: "Print one line per scored token (offset, token, log-probability) before the summary.")
    var perToken = false

    @Option(help: ArgumentHelp("The weights' number format for the products: fp32 (the model as trained), bf16 or int8 (smaller, approximate: a warning says so; docs/PERFORMANCE.md has the measured cost). The file stays fp32.", valueName: "precision"))
    var precision: Precision = .fp32

    func run() throws {
        let loaded = try LoadedModel(path: model)
        let tokenizer = Tokenizer(loaded.model.vocabulary)
        let source = file == "-" ? "standard input" : "'\(file)'"
        let bytes = try FileInput.contents(of: file, what: "text")
        let tokens = try tokenizer.encode(bytes: bytes, source: source)
        guard tokens.count >= 2 else {
            throw CLIError("\(source) has \(tokens.count) token\(tokens.count == 1 ? "" : "s"); scoring needs at least 2 (the first token has no prediction)")
        }
        if loaded.model.vocabulary.unknownPolicy == .replace,
           let unknown = loaded.model.vocabulary.tokens.firstIndex(of: Vocabulary.unknownToken) {
            let count = tokens.count { $0 == Int32(unknown) }
            if count > 0 {
                logger.notice("\(count) of \(tokens.count) tokens of \(source) are not in the vocabulary and are scored as \(Vocabulary.unknownToken)")
            }
        }

        let out = StandardOutput()
        let vocabulary = loaded.model.vocabulary
        let perTokenLine: ((Int, Float) -> Void)? = !perToken ? nil : { [json] offset, logProb in
            let token = tokens[offset - 1]
            if json {
                out.writeLine(JSONText.object([("offset", .int(offset)), ("token", .string(vocabulary.text(of: token))),
                                               ("tid", .int(Int(token))), ("logprob", .float(logProb))]).rendered)
            } else {
                out.writeLine("\(offset)\t\(vocabulary.display(token))\t\(logProb)")
            }
        }
        if let warning = precision.warning { logger.warning("\(warning)") }
        let (nats, scored) = Evaluator(model: loaded.model, precision: precision).score(tokens, perToken: perTokenLine)
        let loss = nats / Double(scored)
        let bits = loss / log(2.0)
        let perplexity = exp(loss)
        if json {
            out.writeLine(JSONText.object([
                ("tokens", .int(tokens.count)), ("loss_nats", .double(loss)),
                ("bits_per_token", .double(bits)), ("perplexity", .double(perplexity)),
            ]).rendered)
        } else {
            out.write("""
                tokens:      \(tokens.count) (\(scored) scored)
                loss:        \(Format.fixed(loss, 6)) nats/token
                bits/token:  \(Format.fixed(bits, 6))
                perplexity:  \(Format.fixed(perplexity, 4))

                """)
        }
        out.flush()
    }
}
