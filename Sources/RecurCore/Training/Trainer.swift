/// One progress report of a training run (also one line of MODEL.metrics.jsonl).
public struct TrainingReport: Sendable {
    public var elapsed: Double
    public var tokens: Int
    public var tokensPerSecond: Double
    /// Mean training loss (nats/token) since the previous report.
    public var trainLoss: Double
    /// Validation loss (nats/token), when this report measured it.
    public var validationLoss: Double?
    public var epoch: Double
    public var learningRate: Float
    /// Estimated seconds left, when the run has a horizon.
    public var eta: Double?
}

/// Where a run is, saved beside a checkpoint so that `--resume` continues exactly.
public struct TrainingProgress: Sendable, Equatable {
    public var tokens = 0
    public var chunk = 0
    public var epoch = 0
    public var position = 0
    public var elapsed: Double = 0
    public var bestValidationLoss: Double?
    public init() {}
}

/// Truncated-BPTT training of a model on a token corpus.
///
/// The training split (the first 1 - valFraction of the tokens) is laid out as B contiguous
/// streams of length L = (n - 1) / B; each step takes the next T tokens of every stream, carries
/// the hidden state from the previous chunk (without backpropagating into it) and resets it when
/// the streams wrap around to their start.
public final class Trainer {
    public private(set) var model: Model
    public let options: TrainingOptions
    public let trainTokens: ArraySlice<Int32>
    public let validationTokens: ArraySlice<Int32>
    public let optimizer: Optimizer
    public var progress: TrainingProgress

    let network: Network
    let state: StateBatch
    let weights: FloatBuffer
    let grads: FloatBuffer
    var rng: SeededGenerator
    let streamLength: Int
    let inputs: UnsafeMutablePointer<Int32>
    let targets: UnsafeMutablePointer<Int32>

    public init(model: Model, corpus: [Int32], options: TrainingOptions,
                optimizer: Optimizer? = nil, progress: TrainingProgress = TrainingProgress()) throws(RecurError) {
        try options.validate()
        let split = Int(Double(corpus.count) * (1 - options.validationFraction))
        trainTokens = corpus[..<split]
        validationTokens = corpus[split...]
        let B = options.batchSize, T = options.sequenceLength
        streamLength = (trainTokens.count - 1) / B
        guard streamLength >= T else {
            throw .invalidData("the training split has \(trainTokens.count) tokens, too few for \(B) streams of at least \(T + 1) tokens; use a smaller --batch or --seq")
        }
        if let bad = corpus.first(where: { $0 < 0 || Int($0) >= model.config.vocabularySize }) {
            throw .invalidData("token id \(bad) is outside the model's vocabulary of \(model.config.vocabularySize)")
        }
        if let optimizer, optimizer.m.count != model.parameters.count || optimizer.kind != options.optimizer {
            throw .invalidConfiguration("the saved optimizer state does not match the model or --optimizer")
        }
        self.model = model
        self.options = options
        self.optimizer = optimizer ?? Optimizer(kind: options.optimizer, parameterCount: model.parameters.count)
        self.progress = progress
        network = Network(config: model.config, steps: T, batch: B, dropout: options.dropout)
        state = StateBatch(config: model.config, batch: B)
        weights = FloatBuffer(model.parameters)
        grads = FloatBuffer(model.parameters.count)
        rng = SeededGenerator(seed: options.seed &+ UInt64(progress.chunk) &* 0x9E37_79B9)
        inputs = .allocate(capacity: T * B)
        targets = .allocate(capacity: T * B)
    }

    deinit {
        inputs.deallocate()
        targets.deallocate()
    }

    /// Epochs completed, fractional.
    public var epochProgress: Double {
        // An epoch is the whole chunks that fit in a stream; the tail shorter than T is skipped.
        let epochLength = streamLength / options.sequenceLength * options.sequenceLength
        return Double(progress.epoch) + Double(progress.position) / Double(epochLength)
    }

    /// The learning rate for the current point of the run.
    public func learningRate(elapsed: Double) -> Float {
        var lr = options.learningRate * pow(options.epochDecay, Float(progress.epoch))
        if options.schedule == .cosine {
            var fraction = 0.0
            if let limit = options.timeLimit { fraction = max(fraction, elapsed / limit) }
            if let epochs = options.epochs { fraction = max(fraction, epochProgress / epochs) }
            fraction = min(1, fraction)
            let floor: Float = 0.05
            lr *= floor + (1 - floor) * Float(0.5 * (1 + cos(Double.pi * fraction)))
        }
        return lr
    }

    /// Trains one chunk; returns its mean loss (nats/token).
    public func step(elapsed: Double) -> Double {
        let T = options.sequenceLength, B = options.batchSize
        if progress.position + T > streamLength {
            progress.position = 0
            progress.epoch += 1
            state.resetAll()
        }
        trainTokens.withUnsafeBufferPointer { all in
            for b in 0..<B {
                let base = b * streamLength + progress.position
                for t in 0..<T {
                    inputs[t * B + b] = all[base + t]
                    targets[t * B + b] = all[base + t + 1]
                }
            }
        }
        network.load(inputs: UnsafeBufferPointer(start: inputs, count: T * B),
                     targets: UnsafeBufferPointer(start: targets, count: T * B))
        network.setInitialState(state)
        let loss = network.forward(parameters: weights.p, training: true, rng: &rng)
        network.getFinalState(state)
        grads.zero()
        network.backward(parameters: weights.p, grads: grads.p)
        clipGradientNorm(grads.p, count: grads.count, maxNorm: options.clip)
        optimizer.update(weights.p, grads.p, count: weights.count, lr: learningRate(elapsed: elapsed))
        progress.position += T
        progress.chunk += 1
        progress.tokens += T * B
        return loss / Double(T * B)
    }

    /// Whether the run has reached its horizon.
    public func finished(elapsed: Double) -> Bool {
        if let limit = options.timeLimit, elapsed >= limit { return true }
        if let epochs = options.epochs, epochProgress >= epochs { return true }
        return false
    }

    /// Mean validation loss (nats/token) of the current weights, scored as one stream from the
    /// zero state. Nil when the split holds fewer than two tokens.
    public func validate() -> Double? {
        guard validationTokens.count >= 2 else { return nil }
        let evaluator = Evaluator(model: currentModel())
        let (nats, count) = evaluator.score(Array(validationTokens))
        return nats / Double(count)
    }

    /// The recurrent state the B streams carry into the next chunk ([layer][h, c][B][H]), so
    /// that a checkpoint can resume exactly.
    public var carriedState: [Float] { state.storage.array }

    /// Restores a state saved from `carriedState`.
    public func restoreCarriedState(_ values: [Float]) throws(RecurError) {
        guard values.count == state.storage.count else {
            throw .invalidConfiguration("the saved recurrent state has \(values.count) values but \(options.batchSize) streams of this model need \(state.storage.count)")
        }
        values.withUnsafeBufferPointer { state.storage.p.update(from: $0.baseAddress!, count: values.count) }
    }

    /// The model with the current weights.
    public func currentModel() -> Model {
        var m = model
        m.parameters = weights.array
        return m
    }

    /// Runs until the horizon or until `shouldStop` says so, calling `report` every
    /// `reportInterval` seconds (with validation every `evaluationInterval`) and at the end.
    /// `clock` returns seconds since an arbitrary origin.
    public func run(clock: () -> Double, shouldStop: () -> Bool,
                    report: (TrainingReport) -> Void) {
        let start = clock() - progress.elapsed
        var lastReport = clock(), lastEval = clock()
        var lossSum = 0.0, lossCount = 0, tokensAtReport = progress.tokens
        func elapsed() -> Double { clock() - start }
        func emit(validate wantsValidation: Bool) {
            let now = clock()
            let validation = wantsValidation ? validate() : nil
            if let v = validation { progress.bestValidationLoss = min(progress.bestValidationLoss ?? v, v) }
            let dt = max(now - lastReport, 1e-9)
            let e = elapsed()
            var eta: Double?
            if let limit = options.timeLimit { eta = max(0, limit - e) }
            if let epochs = options.epochs, epochProgress > 0 {
                let byEpochs = e / epochProgress * (epochs - epochProgress)
                eta = min(eta ?? byEpochs, byEpochs)
            }
            report(TrainingReport(elapsed: e, tokens: progress.tokens,
                                  tokensPerSecond: Double(progress.tokens - tokensAtReport) / dt,
                                  trainLoss: lossCount > 0 ? lossSum / Double(lossCount) : .nan,
                                  validationLoss: validation, epoch: epochProgress,
                                  learningRate: learningRate(elapsed: e), eta: eta))
            lossSum = 0; lossCount = 0; tokensAtReport = progress.tokens
            lastReport = clock()
            if wantsValidation { lastEval = lastReport }
        }
        while !finished(elapsed: elapsed()) && !shouldStop() {
            lossSum += step(elapsed: elapsed())
            lossCount += 1
            progress.elapsed = elapsed()
            let now = clock()
            if now - lastEval >= options.evaluationInterval {
                emit(validate: true)
            } else if now - lastReport >= options.reportInterval {
                emit(validate: false)
            }
        }
        progress.elapsed = elapsed()
        emit(validate: true)
    }
}

#if canImport(Glibc)
import Glibc
#endif
