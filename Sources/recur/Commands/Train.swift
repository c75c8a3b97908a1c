import ArgumentParser
import Logging
import RecurCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `recur train CORPUS --out MODEL`: train a model, or continue one with `--resume`.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a language model on a text corpus (or continue one with --resume).",
        discussion: """
            Progress goes to stderr: a live line on a terminal, else a line per report. Each \
            report is also appended to MODEL.metrics.jsonl, MODEL being the --out path as \
            given (--out m.safetensors: m.safetensors.metrics.jsonl), with elapsed_s, tokens, \
            tokens_per_s, train_loss, val_loss when measured, epoch, lr (losses in nats/token). \
            The run ends at its horizon or on Ctrl-C / SIGTERM, after the current chunk, then \
            validates once more (a pass over the whole validation split, not counted in \
            --time-limit); either way it writes MODEL and the checkpoint \
            MODEL.optim.safetensors (exit code 130 after \
            Ctrl-C, 143 after SIGTERM). Continue with the same command plus --resume MODEL \
            (and a larger --epochs or --time-limit if the run had finished): the architecture, \
            vocabulary and unspecified training options come from the model and checkpoint.
            """)

    @Argument(help: "The training text, read as UTF-8 (raw bytes with --tokenizer byte).")
    var corpus: String

    @Option(help: ArgumentHelp("Where to write the model (.safetensors); its metrics log MODEL.metrics.jsonl and checkpoint MODEL.optim.safetensors go beside it.", valueName: "model"))
    var out: String

    @Option(help: ArgumentHelp("Continue training this model, with its checkpoint MODEL.optim.safetensors if present.", valueName: "model"))
    var resume: String?

    @Option(help: ArgumentHelp("Element type of the written model's weights; the checkpoint keeps exact f32 weights either way.", valueName: "type"))
    var storage: StorageChoice = .f32

    @OptionGroup(title: "Model (with --resume: must match the model, or be left out)")
    var shape: ModelShapeOptions

    @OptionGroup(title: "Training")
    var training: TrainingRunOptions

    func validate() throws {
        guard !out.isEmpty else { throw ValidationError("--out must name a file") }
    }

    func run() throws {
        try FileInput.checkWritable(out, what: "model")
        let corpusBytes = try FileInput.contents(of: corpus, what: "corpus")
        let session = try resume.map { path throws(CLIError) in try resumedSession(from: path, corpusBytes: corpusBytes) }
            ?? newSession(corpusBytes: corpusBytes)

        let trainer: Trainer
        do {
            trainer = try Trainer(model: session.model, corpus: session.tokens, options: session.options,
                                  optimizer: session.optimizer, progress: session.progress)
            if let state = session.carriedState { try trainer.restoreCarriedState(state) }
        } catch {
            throw CLIError("cannot train on '\(corpus)': \(error.sentence)")
        }
        if trainer.finished(elapsed: trainer.progress.elapsed) {
            throw CLIError("the resumed run has already reached its horizon (\(horizonDescription(trainer))); give a larger --epochs or --time-limit to continue")
        }
        describe(trainer, session)

        let metrics = try MetricsLog(path: out + ".metrics.jsonl", append: resume != nil)
        let display = ProgressDisplay(terminal: StandardError.isTerminal)
        let startTokens = trainer.progress.tokens, startElapsed = trainer.progress.elapsed
        var lastValidation: Double?
        var announcedStop = false
        StopSignal.install()
        trainer.run(clock: monotonicSeconds, shouldStop: {
            guard let signal = StopSignal.received else { return false }
            if !announcedStop {
                announcedStop = true
                display.interrupt("\(StopSignal.name(signal)): finishing the chunk, validating and saving (Ctrl-C again quits without saving)")
            }
            return true
        }, report: { report in
            if let v = report.validationLoss { lastValidation = v }
            metrics.append(report)
            display.show(report, lastValidation: lastValidation)
        })
        display.finish()

        let signal = StopSignal.received
        let model = finishedModel(trainer, corpusBytes: corpusBytes.count, validation: lastValidation, interruptedBy: signal)
        do {
            try model.write(to: out, storage: storage.storage)
            try TrainingCheckpoint(trainer: trainer, corpusBytes: corpusBytes.count,
                                   includeWeights: storage != .f32)
                .write(to: TrainingCheckpoint.path(forModel: out))
        } catch {
            throw CLIError("cannot save the trained model: \(error.sentence)")
        }
        printSummary(trainer, validation: lastValidation,
                     sessionTokens: trainer.progress.tokens - startTokens,
                     sessionSeconds: trainer.progress.elapsed - startElapsed)
        if let signal {
            logger.notice("stopped by \(StopSignal.name(signal)); continue with: \(resumeCommand())")
            throw ExitCode(128 + signal)
        }
    }

    // MARK: Reporting

    private func horizonDescription(_ trainer: Trainer) -> String {
        var parts: [String] = []
        if let epochs = trainer.options.epochs {
            parts.append("--epochs \(Format.trimmed(epochs)) (at epoch \(Format.fixed(trainer.epochProgress, 2)))")
        }
        if let limit = trainer.options.timeLimit {
            parts.append("--time-limit \(Format.trimmed(limit)) (\(Format.duration(trainer.progress.elapsed)) done)")
        }
        return parts.joined(separator: ", ")
    }

    private func describe(_ trainer: Trainer, _ session: Session) {
        let config = session.model.config, vocabulary = session.model.vocabulary
        let shape = "\(config.cell.rawValue) \(config.layers)×\(config.hiddenSize)"
        logger.info("""
            \(session.progress.tokens > 0 ? "resuming" : "training") \(shape) \
            (\(Format.grouped(session.model.parameters.count)) parameters, \(vocabulary.kind.rawValue) \
            vocabulary of \(vocabulary.count)) on '\(corpus)': \(Format.count(Double(trainer.trainTokens.count))) \
            training and \(Format.count(Double(trainer.validationTokens.count))) validation tokens
            """)
        if session.progress.tokens > 0 {
            logger.info("continuing at epoch \(Format.fixed(trainer.epochProgress, 2)), \(Format.grouped(session.progress.tokens)) tokens, \(Format.duration(session.progress.elapsed)) trained; horizon: \(horizonDescription(trainer).isEmpty ? "none" : horizonDescription(trainer))")
        }
    }

    private func printSummary(_ trainer: Trainer, validation: Double?,
                              sessionTokens: Int, sessionSeconds: Double) {
        let out = StandardOutput()
        let speed = sessionSeconds > 0 ? Double(sessionTokens) / sessionSeconds : 0
        out.writeLine("trained \(Format.grouped(trainer.progress.tokens)) tokens (epoch \(Format.fixed(trainer.epochProgress, 2))) in \(Format.duration(trainer.progress.elapsed)); this session \(Format.grouped(sessionTokens)) tokens at \(Format.count(speed)) tokens/s")
        if let v = validation {
            out.writeLine("final validation loss \(Format.fixed(v, 4)) nats/token, \(Format.fixed(v / log(2.0), 4)) bits/token")
        } else {
            out.writeLine("no validation loss: the validation split is empty (--val-fraction)")
        }
        out.writeLine("wrote \(self.out) (\(storage.storage.dtype.rawValue)), \(TrainingCheckpoint.path(forModel: self.out)) and \(self.out).metrics.jsonl")
        out.flush()
    }

    /// This command line with `--resume OUT` in place of any `--resume` it had.
    private func resumeCommand() -> String {
        var words: [String] = []
        var arguments = CommandLine.arguments[...]
        while let word = arguments.popFirst() {
            if word == "--resume" { _ = arguments.popFirst(); continue }
            if word.hasPrefix("--resume=") { continue }
            words.append(word)
        }
        return Format.shellCommand(words + ["--resume", out])
    }
}
