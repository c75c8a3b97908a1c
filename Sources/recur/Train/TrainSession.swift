import RecurCore

/// Everything a `Trainer` starts from: a new model, or a resumed one with its optimizer state.
struct TrainSession {
    var model: Model
    var tokens: [Int32]
    var options: TrainingOptions
    var optimizer: Optimizer?
    var progress: TrainingProgress
    /// The training streams' recurrent state from the checkpoint, when it saved one.
    var carriedState: [Float]? = nil
}

extension Train {
    typealias Session = TrainSession

    /// A fresh model: vocabulary from the corpus, PyTorch's initialisation from --seed.
    func newSession(corpusBytes: [UInt8]) throws(CLIError) -> Session {
        let kind = shape.resolvedTokenizer
        let vocabulary: Vocabulary
        do {
            if kind == .byte {
                vocabulary = try Vocabulary.build(kind: .byte, corpus: "", unknownPolicy: shape.unknown)
            } else {
                let text = String(decoding: corpusBytes, as: UTF8.self)
                if !text.utf8.elementsEqual(corpusBytes) {
                    logger.warning("'\(corpus)' is not valid UTF-8; its invalid bytes read as U+FFFD (--tokenizer byte trains on the raw bytes)")
                }
                vocabulary = try Vocabulary.build(kind: kind, corpus: text, unknownPolicy: shape.unknown,
                                                  maxWords: shape.maxWords ?? 20000, minCount: shape.minCount ?? 1)
            }
        } catch {
            throw CLIError("cannot build a vocabulary from '\(corpus)': \(error.sentence)")
        }
        let tokens: [Int32]
        do {
            tokens = try Tokenizer(vocabulary).encode(bytes: corpusBytes, source: "the corpus '\(corpus)'")
        } catch {
            let hint = kind == .word ? "; --max-words and --min-count left it out of the vocabulary, so use --unknown replace or relax them" : ""
            throw CLIError(error.message + hint)
        }
        let config = shape.config(vocabularySize: vocabulary.count)
        do {
            try config.validate()
        } catch {
            throw CLIError("cannot build the model: \(error.sentence)")
        }
        let options = training.apply(to: TrainingOptions())
        let model = Model.random(config: config, vocabulary: vocabulary, seed: options.seed)
        return Session(model: model, tokens: tokens, options: options, optimizer: nil, progress: TrainingProgress())
    }

    /// The model at `path` with, when `path.optim.safetensors` exists, the optimizer state,
    /// progress and options saved beside it; command-line options override the saved ones,
    /// except those that would change the corpus layout under the saved position.
    func resumedSession(from path: String, corpusBytes: [UInt8]) throws(CLIError) -> Session {
        var model = try LoadedModel(path: path).model
        try shape.check(resumed: model, path: path)
        let tokens: [Int32]
        do {
            tokens = try Tokenizer(model.vocabulary).encode(bytes: corpusBytes, source: "the corpus '\(corpus)'")
        } catch {
            throw CLIError(error.message + "; a resumed model keeps its vocabulary, so train a new model for this corpus")
        }
        let checkpointPath = TrainingCheckpoint.path(forModel: path)
        var base = TrainingOptions()
        var optimizer: Optimizer?
        var progress = TrainingProgress()
        var carriedState: [Float]?
        if FileInput.exists(checkpointPath) {
            let checkpoint: TrainingCheckpoint
            do {
                checkpoint = try TrainingCheckpoint(contentsOf: checkpointPath)
            } catch {
                throw CLIError(error.sentence + "; delete it to continue from the model's weights with a fresh optimizer")
            }
            let modelTokens = model.provenance["tokens"] ?? "an unknown number of"
            guard modelTokens == String(checkpoint.progress.tokens) else {
                throw CLIError("'\(checkpointPath)' was saved after \(checkpoint.progress.tokens) tokens but '\(path)' after \(modelTokens) tokens, so they are not from the same point of a run; delete the checkpoint to continue from the model's weights with a fresh optimizer")
            }
            if let weights = checkpoint.weights {
                guard weights.count == model.parameters.count else {
                    throw CLIError("'\(checkpointPath)' holds \(weights.count) weights but '\(path)' has \(model.parameters.count) parameters")
                }
                model.parameters = weights
            }
            do {
                optimizer = try checkpoint.makeOptimizer(parameterCount: model.parameters.count)
            } catch {
                throw CLIError("'\(checkpointPath)' does not fit '\(path)': \(error.sentence)")
            }
            progress = checkpoint.progress
            carriedState = checkpoint.state
            base = checkpoint.options
            try keepLayout("--seq", training.seq, base.sequenceLength, checkpointPath)
            try keepLayout("--batch", training.batch, base.batchSize, checkpointPath)
            try keepLayout("--val-fraction", training.valFraction, base.validationFraction, checkpointPath)
            try keepLayout("--optimizer", training.optimizer, base.optimizer, checkpointPath)
            if checkpoint.corpusBytes != corpusBytes.count {
                logger.warning("the checkpoint was trained on a corpus of \(checkpoint.corpusBytes) bytes but '\(corpus)' has \(corpusBytes.count); continuing at the saved stream position anyway")
            }
        } else {
            logger.warning("no checkpoint '\(checkpointPath)': continuing from the model's weights with a fresh optimizer and counters")
        }
        return Session(model: model, tokens: tokens, options: training.apply(to: base),
                       optimizer: optimizer, progress: progress, carriedState: carriedState)
    }

    /// Refuses an option that would move the saved position to other text (stream length,
    /// train/validation split) or that does not match the saved optimizer state.
    private func keepLayout<T: Equatable>(_ flag: String, _ given: T?, _ saved: T, _ checkpointPath: String) throws(CLIError) {
        guard let given, given != saved else { return }
        throw CLIError("\(flag) \(given) differs from the \(saved) the run was started with; a resumed run keeps it (leave \(flag) out, or delete '\(checkpointPath)' to restart the optimizer)")
    }

    /// The trained model with its provenance brought up to date.
    func finishedModel(_ trainer: Trainer, corpusBytes: Int, validation: Double?, interruptedBy signal: Int32?) -> Model {
        var model = trainer.currentModel()
        var p = model.provenance
        p["command"] = Format.shellCommand(CommandLine.arguments)
        p["corpus"] = corpus
        p["corpus_bytes"] = String(corpusBytes)
        p["seed"] = String(trainer.options.seed)
        p["tokens"] = String(trainer.progress.tokens)
        p["epochs"] = Format.fixed(trainer.epochProgress, 4)
        p["elapsed_s"] = Format.fixed(trainer.progress.elapsed, 3)
        p["val_loss"] = validation.map { Format.fixed($0, 6) }
        p["recur_version"] = Recur.version
        p["date"] = Format.isoDateNow()
        p["resumed_from"] = resume
        p["interrupted"] = signal.map(StopSignal.name)
        model.provenance = p
        return model
    }
}
