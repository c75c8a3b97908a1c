/// The resumable state of a training run, saved beside a model as `MODEL.optim.safetensors`:
/// the optimizer's moments as F32 tensors, and its step, the run's progress and the options
/// that shape the run as string metadata. With the model file it restarts `Trainer` at the
/// same position, step, elapsed time and learning rate.
///
///     m        (P)  Adam: first moment; Adagrad: sum of squared gradients
///     v        (P)  Adam: second moment; absent for Adagrad
///     weights  (P)  the exact F32 weights, present only when the model file is stored at a
///                   lower precision (F16, BF16), so that resuming loses nothing
///
///     state    (S)  the recurrent state the B training streams carry into the next chunk
///
/// P is the model's parameter count, S = B × the model's state size. With `state` a resumed run
/// continues exactly where it stopped; a checkpoint without it starts the streams from zero.
public struct TrainingCheckpoint: Sendable {
    public var optimizerKind: OptimizerKind
    /// Optimizer updates applied so far (Adam's bias correction depends on it).
    public var step: Int
    public var m: [Float]
    public var v: [Float]
    public var weights: [Float]?
    /// The carried recurrent state of the training streams (`Trainer.carriedState`).
    public var state: [Float]?
    public var progress: TrainingProgress
    public var options: TrainingOptions
    /// Size of the corpus the run trained on, so a resume on another corpus can be noticed.
    public var corpusBytes: Int

    public static let formatName = "recur-optim"
    public static let currentVersion = "1"

    /// The file name of the checkpoint that goes with the model at `modelPath`.
    public static func path(forModel modelPath: String) -> String {
        modelPath + ".optim.safetensors"
    }

    public init(optimizerKind: OptimizerKind, step: Int, m: [Float], v: [Float], weights: [Float]?,
                progress: TrainingProgress, options: TrainingOptions, corpusBytes: Int) {
        self.optimizerKind = optimizerKind
        self.step = step
        self.m = m
        self.v = v
        self.weights = weights
        self.progress = progress
        self.options = options
        self.corpusBytes = corpusBytes
        self.state = nil
    }

    /// Captures a trainer's optimizer, progress and options.
    /// - Parameter includeWeights: also save the exact weights (for lower-precision model files).
    public init(trainer: Trainer, corpusBytes: Int, includeWeights: Bool) {
        let optimizer = trainer.optimizer
        self.init(optimizerKind: optimizer.kind, step: optimizer.step, m: optimizer.m.array,
                  v: optimizer.v.array, weights: includeWeights ? trainer.currentModel().parameters : nil,
                  progress: trainer.progress, options: trainer.options, corpusBytes: corpusBytes)
        state = trainer.carriedState
    }

    /// An optimizer holding this checkpoint's state, for `Trainer(optimizer:)`.
    /// - Throws: `.invalidConfiguration` when the checkpoint belongs to a model of another size.
    public func makeOptimizer(parameterCount: Int) throws(RecurError) -> Optimizer {
        guard m.count == parameterCount else {
            throw .invalidConfiguration("the training checkpoint holds optimizer state for \(m.count) parameters but the model has \(parameterCount)")
        }
        let optimizer = Optimizer(kind: optimizerKind, parameterCount: parameterCount)
        m.withUnsafeBufferPointer { optimizer.m.p.update(from: $0.baseAddress!, count: m.count) }
        if optimizerKind == .adam {
            v.withUnsafeBufferPointer { optimizer.v.p.update(from: $0.baseAddress!, count: v.count) }
        }
        optimizer.step = step
        return optimizer
    }

    // MARK: File

    /// Writes the checkpoint atomically (temporary file, fsync, rename), like a model file.
    public func write(to path: String) throws(RecurError) {
        try ModelFileIO.writeFileAtomically(serialize(), to: path)
    }

    /// Reads and validates the checkpoint at `path`.
    public init(contentsOf path: String) throws(RecurError) {
        do {
            try self.init(safetensors: try ModelFileIO.readFile(path))
        } catch {
            throw .invalidModelFile("the training checkpoint '\(path)' is unusable: \(error.sentence)")
        }
    }

    /// The checkpoint as safetensors bytes (always F32: resuming must be exact).
    public func serialize() -> [UInt8] {
        var tensors = [SafeTensorsFile.Tensor(name: "m", shape: [m.count], values: m[...])]
        if optimizerKind == .adam {
            tensors.append(.init(name: "v", shape: [v.count], values: v[...]))
        }
        if let weights {
            tensors.append(.init(name: "weights", shape: [weights.count], values: weights[...]))
        }
        if let state {
            tensors.append(.init(name: "state", shape: [state.count], values: state[...]))
        }
        return SafeTensorsFile.serialize(tensors, metadata: metadata, storage: .float32)
    }

    private var metadata: [String: String] {
        var meta: [String: String] = [
            Key.format: Self.formatName,
            Key.formatVersion: Self.currentVersion,
            Key.optimizer: optimizerKind.rawValue,
            Key.step: String(step),
            Key.corpusBytes: String(corpusBytes),
            Key.tokens: String(progress.tokens),
            Key.chunk: String(progress.chunk),
            Key.epoch: String(progress.epoch),
            Key.position: String(progress.position),
            // Swift prints the shortest text that reads back to the same Double or Float.
            Key.elapsed: String(progress.elapsed),
            Key.sequenceLength: String(options.sequenceLength),
            Key.batchSize: String(options.batchSize),
            Key.learningRate: String(options.learningRate),
            Key.clip: String(options.clip),
            Key.dropout: String(options.dropout),
            Key.validationFraction: String(options.validationFraction),
            Key.schedule: options.schedule.rawValue,
            Key.epochDecay: String(options.epochDecay),
            Key.seed: String(options.seed),
            Key.evaluationInterval: String(options.evaluationInterval),
            Key.reportInterval: String(options.reportInterval),
        ]
        if let best = progress.bestValidationLoss { meta[Key.bestValidationLoss] = String(best) }
        if let limit = options.timeLimit { meta[Key.timeLimit] = String(limit) }
        if let epochs = options.epochs { meta[Key.epochs] = String(epochs) }
        return meta
    }

    /// Parses checkpoint bytes, checking the format, every field and the tensor sizes.
    public init(safetensors bytes: [UInt8]) throws(RecurError) {
        func bad(_ message: String) -> RecurError { .invalidModelFile(message) }
        let file = try SafeTensorsFile(bytes: bytes)
        let meta = file.metadata
        func string(_ key: String) throws(RecurError) -> String {
            guard let value = meta[key] else { throw bad("the metadata has no '\(key)' entry") }
            return value
        }
        func parse<T: LosslessStringConvertible>(_ key: String, _: T.Type) throws(RecurError) -> T {
            let text = try string(key)
            guard let value = T(text) else { throw bad("metadata '\(key)' is '\(text)', not a valid \(T.self)") }
            return value
        }
        func optional<T: LosslessStringConvertible>(_ key: String, _ type: T.Type) throws(RecurError) -> T? {
            meta[key] == nil ? nil : try parse(key, type)
        }
        func choice<T: RawRepresentable>(_ key: String, _: T.Type) throws(RecurError) -> T where T.RawValue == String {
            let text = try string(key)
            guard let value = T(rawValue: text) else { throw bad("metadata '\(key)' is '\(text)', which this build does not know") }
            return value
        }

        let format = try string(Key.format)
        guard format == Self.formatName else {
            throw bad("metadata 'format' is '\(format)', not '\(Self.formatName)'; this is not a recur training checkpoint")
        }
        let version = try string(Key.formatVersion)
        guard version == Self.currentVersion else {
            throw bad("checkpoint format version '\(version)' is not supported; this build reads version \(Self.currentVersion)")
        }
        optimizerKind = try choice(Key.optimizer, OptimizerKind.self)
        step = try parse(Key.step, Int.self)
        corpusBytes = try parse(Key.corpusBytes, Int.self)

        var progress = TrainingProgress()
        progress.tokens = try parse(Key.tokens, Int.self)
        progress.chunk = try parse(Key.chunk, Int.self)
        progress.epoch = try parse(Key.epoch, Int.self)
        progress.position = try parse(Key.position, Int.self)
        progress.elapsed = try parse(Key.elapsed, Double.self)
        progress.bestValidationLoss = try optional(Key.bestValidationLoss, Double.self)
        guard step >= 0, progress.tokens >= 0, progress.chunk >= 0, progress.epoch >= 0,
              progress.position >= 0, progress.elapsed >= 0, progress.elapsed.isFinite else {
            throw bad("the progress counters must be non-negative")
        }
        self.progress = progress

        var options = TrainingOptions()
        options.optimizer = optimizerKind
        options.sequenceLength = try parse(Key.sequenceLength, Int.self)
        options.batchSize = try parse(Key.batchSize, Int.self)
        options.learningRate = try parse(Key.learningRate, Float.self)
        options.clip = try parse(Key.clip, Float.self)
        options.dropout = try parse(Key.dropout, Float.self)
        options.validationFraction = try parse(Key.validationFraction, Double.self)
        options.schedule = try choice(Key.schedule, LearningRateSchedule.self)
        options.epochDecay = try parse(Key.epochDecay, Float.self)
        options.seed = try parse(Key.seed, UInt64.self)
        options.evaluationInterval = try parse(Key.evaluationInterval, Double.self)
        options.reportInterval = try parse(Key.reportInterval, Double.self)
        options.timeLimit = try optional(Key.timeLimit, Double.self)
        options.epochs = try optional(Key.epochs, Double.self)
        do {
            try options.validate()
        } catch {
            throw bad("the saved training options are invalid: \(error.sentence)")
        }
        self.options = options

        func tensor(_ name: String) throws(RecurError) -> [Float]? {
            guard let entry = file.entry(named: name) else { return nil }
            guard entry.shape.count == 1, entry.dtype == .f32 else {
                throw bad("tensor '\(name)' must be a one-dimensional F32 tensor, not \(entry.dtype.rawValue) \(entry.shape)")
            }
            return try file.floats(entry)
        }
        guard let m = try tensor("m") else { throw bad("tensor 'm' is missing") }
        let v = try tensor("v")
        switch optimizerKind {
        case .adam:
            guard let v, v.count == m.count else {
                throw bad("an Adam checkpoint needs tensor 'v' with as many elements as 'm' (\(m.count))")
            }
        case .adagrad:
            guard v == nil else { throw bad("an Adagrad checkpoint has no tensor 'v'") }
        }
        let weights = try tensor("weights")
        if let weights, weights.count != m.count {
            throw bad("tensor 'weights' has \(weights.count) elements but 'm' has \(m.count)")
        }
        let state = try tensor("state")
        if let extra = file.entries.first(where: { !["m", "v", "weights", "state"].contains($0.name) }) {
            throw bad("tensor '\(extra.name)' is not part of a training checkpoint")
        }
        for (name, values) in [("m", m), ("v", v ?? []), ("weights", weights ?? []), ("state", state ?? [])] {
            if let index = values.firstIndex(where: { !$0.isFinite }) {
                throw bad("tensor '\(name)' holds \(values[index]) at element \(index); the state must be finite")
            }
        }
        self.m = m
        self.v = v ?? []
        self.weights = weights
        self.state = state
    }

    /// Metadata keys; part of the file format, so never rename them.
    enum Key {
        static let format = "format"
        static let formatVersion = "format_version"
        static let optimizer = "optimizer"
        static let step = "step"
        static let corpusBytes = "corpus_bytes"
        static let tokens = "progress.tokens"
        static let chunk = "progress.chunk"
        static let epoch = "progress.epoch"
        static let position = "progress.position"
        static let elapsed = "progress.elapsed_s"
        static let bestValidationLoss = "progress.best_val_loss"
        static let sequenceLength = "options.seq"
        static let batchSize = "options.batch"
        static let learningRate = "options.lr"
        static let clip = "options.clip"
        static let dropout = "options.dropout"
        static let validationFraction = "options.val_fraction"
        static let schedule = "options.schedule"
        static let epochDecay = "options.lr_decay"
        static let seed = "options.seed"
        static let evaluationInterval = "options.eval_every_s"
        static let reportInterval = "options.report_every_s"
        static let timeLimit = "options.time_limit_s"
        static let epochs = "options.epochs"
    }
}
