import ArgumentParser
import RecurCore

/// The model's shape and vocabulary. All optional so that `--resume` can tell whether the
/// user asked for something the resumed model already fixes; defaults are in `resolved`.
struct ModelShapeOptions: ParsableArguments {
    @Option(help: "Recurrent cell (default: lstm).")
    var cell: CellKind?

    @Option(help: "Activation of the rnn cell; lstm and gru have fixed ones (default: tanh).")
    var nonlinearity: Nonlinearity?

    @Option(help: ArgumentHelp("Hidden units per layer (default: 256).", valueName: "n"))
    var hidden: Int?

    @Option(help: ArgumentHelp("Stacked recurrent layers (default: 2).", valueName: "n"))
    var layers: Int?

    @Option(help: ArgumentHelp("Embedding width; 0 feeds one-hot vectors instead, as min-char-rnn does (default: 64, for every tokenizer).", valueName: "n"))
    var embedding: Int?

    @Option(help: "char: a token per Unicode character; byte: per UTF-8 byte; word: words, space runs and symbols (default: char).")
    var tokenizer: TokenizerKind?

    @Option(help: "Text outside the vocabulary: error refuses it, replace maps it to <unk> (default: error for char, replace for word).")
    var unknown: UnknownPolicy?

    @Option(help: ArgumentHelp("Word tokenizer: keep the N most frequent words (default: 20000).", valueName: "n"))
    var maxWords: Int?

    @Option(help: ArgumentHelp("Word tokenizer: keep only words seen at least N times (default: 1).", valueName: "n"))
    var minCount: Int?

    var resolvedTokenizer: TokenizerKind { tokenizer ?? .char }

    /// Refuses a resumed model whose shape or vocabulary differs from what the command line
    /// asks for, so that rerunning a training command with --resume is always safe.
    /// (--max-words and --min-count shaped the vocabulary, which the model now fixes.)
    func check(resumed model: Model, path: String) throws(CLIError) {
        let config = model.config, vocabulary = model.vocabulary
        func same<T: Equatable>(_ flag: String, _ given: T?, _ actual: T, _ text: (T) -> String) throws(CLIError) {
            guard let given, given != actual else { return }
            throw CLIError("\(flag) \(text(given)) differs from the \(text(actual)) of the resumed model '\(path)'; a resumed model keeps its architecture and vocabulary (leave \(flag) out)")
        }
        try same("--cell", cell, config.cell, \.rawValue)
        try same("--nonlinearity", nonlinearity, config.nonlinearity, \.rawValue)
        try same("--hidden", hidden, config.hiddenSize, String.init)
        try same("--layers", layers, config.layers, String.init)
        try same("--embedding", embedding, config.embeddingSize, String.init)
        try same("--tokenizer", tokenizer, vocabulary.kind, \.rawValue)
        try same("--unknown", unknown, vocabulary.unknownPolicy, \.rawValue)
    }

    /// The configuration of a new model with `vocabularySize` tokens.
    func config(vocabularySize: Int) -> ModelConfig {
        ModelConfig(cell: cell ?? .lstm, nonlinearity: nonlinearity ?? .tanh, vocabularySize: vocabularySize,
                    hiddenSize: hidden ?? 256, layers: layers ?? 2, embeddingSize: embedding ?? 64)
    }

    func validate() throws {
        if nonlinearity != nil, let cell, cell != .rnn {
            throw ValidationError("--nonlinearity only applies to --cell rnn; \(cell.rawValue) has fixed activations")
        }
        if nonlinearity != nil, cell == nil {
            throw ValidationError("--nonlinearity only applies to --cell rnn, and the default cell is lstm; add --cell rnn")
        }
        if let hidden, !(1...ModelConfig.maxHidden).contains(hidden) {
            throw ValidationError("--hidden must be in 1...\(ModelConfig.maxHidden), got \(hidden)")
        }
        if let layers, !(1...ModelConfig.maxLayers).contains(layers) {
            throw ValidationError("--layers must be in 1...\(ModelConfig.maxLayers), got \(layers)")
        }
        if let embedding, !(0...ModelConfig.maxHidden).contains(embedding) {
            throw ValidationError("--embedding must be in 0...\(ModelConfig.maxHidden) (0 = one-hot input), got \(embedding)")
        }
        if unknown != nil, tokenizer == .byte {
            throw ValidationError("--unknown does not apply to --tokenizer byte: every byte is in its vocabulary")
        }
        if maxWords != nil || minCount != nil, resolvedTokenizer != .word {
            let flag = maxWords != nil ? "--max-words" : "--min-count"
            throw ValidationError("\(flag) only applies to --tokenizer word")
        }
        if let maxWords, maxWords < 1 { throw ValidationError("--max-words must be at least 1, got \(maxWords)") }
        if let minCount, minCount < 1 { throw ValidationError("--min-count must be at least 1, got \(minCount)") }
    }
}

/// How the run trains. Optional so that a resumed run takes the checkpoint's values for
/// whatever the command line leaves out; `apply(to:)` merges.
struct TrainingRunOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Tokens per truncated-BPTT chunk (default: 100).", valueName: "n"))
    var seq: Int?

    @Option(help: ArgumentHelp("Streams trained side by side; the corpus is cut into this many (default: 32).", valueName: "n"))
    var batch: Int?

    @Option(help: "Update rule (default: adam).")
    var optimizer: OptimizerKind?

    @Option(help: ArgumentHelp("Learning rate (default: 2e-3).", valueName: "rate"))
    var lr: Float?

    @Option(help: ArgumentHelp("Multiply the learning rate by this after every epoch, in (0, 1] (default: 1, no decay).", valueName: "factor"))
    var lrDecay: Float?

    @Option(help: "Learning-rate schedule over the run's horizon; cosine decays to 5% of --lr (default: constant).")
    var schedule: LearningRateSchedule?

    @Option(help: ArgumentHelp("Clip the gradient's global norm to this; 0 turns clipping off (default: 5).", valueName: "norm"))
    var clip: Float?

    @Option(help: ArgumentHelp("Dropout on each layer's output while training, in [0, 1) (default: 0).", valueName: "p"))
    var dropout: Float?

    @Option(help: ArgumentHelp("The last fraction of the corpus validates instead of training, in [0, 1) (default: 0.1).", valueName: "fraction"))
    var valFraction: Double?

    @Option(help: ArgumentHelp("Stop after this many seconds of training; the final validation pass comes after (it scores the whole validation split, so it takes longer on a larger split or a slower machine). Without --time-limit and --epochs: 1 epoch.", valueName: "seconds"))
    var timeLimit: Double?

    @Option(help: ArgumentHelp("Stop after this many passes over the training split; fractions are fine, e.g. 0.5.", valueName: "n"))
    var epochs: Double?

    @Option(help: ArgumentHelp("Seconds between validation passes; the end of the run always validates (default: 60).", valueName: "seconds"))
    var evalEvery: Double?

    @Option(help: ArgumentHelp("Seconds between progress reports and metrics lines (default: 5).", valueName: "seconds"))
    var reportEvery: Double?

    @Option(help: ArgumentHelp("Seed of the initial weights and of dropout (default: 0).", valueName: "n"))
    var seed: UInt64?

    /// `base` with every option given on the command line applied. The horizon moves as one:
    /// giving --time-limit or --epochs replaces both of the base's; giving neither keeps the
    /// base's, and a run with no horizon at all trains 1 epoch.
    func apply(to base: TrainingOptions) -> TrainingOptions {
        var o = base
        if let seq { o.sequenceLength = seq }
        if let batch { o.batchSize = batch }
        if let optimizer { o.optimizer = optimizer }
        if let lr { o.learningRate = lr }
        if let lrDecay { o.epochDecay = lrDecay }
        if let schedule { o.schedule = schedule }
        if let clip { o.clip = clip }
        if let dropout { o.dropout = dropout }
        if let valFraction { o.validationFraction = valFraction }
        if let evalEvery { o.evaluationInterval = evalEvery }
        if let reportEvery { o.reportInterval = reportEvery }
        if let seed { o.seed = seed }
        if timeLimit != nil || epochs != nil {
            o.timeLimit = timeLimit
            o.epochs = epochs
        }
        if o.timeLimit == nil && o.epochs == nil { o.epochs = 1 }
        return o
    }

    func validate() throws {
        // TrainingOptions knows the ranges and words its messages in terms of these flags.
        do {
            try apply(to: TrainingOptions()).validate()
        } catch {
            throw ValidationError(error.sentence)
        }
        if let evalEvery, !(evalEvery > 0) {
            throw ValidationError("--eval-every must be a positive number of seconds, got \(evalEvery)")
        }
        if let reportEvery, !(reportEvery > 0) {
            throw ValidationError("--report-every must be a positive number of seconds, got \(reportEvery)")
        }
    }
}
