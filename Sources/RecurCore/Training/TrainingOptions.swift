/// How a training run proceeds. Defaults are those of the PyTorch peer
/// (shared/peers/torch_charlm_train.py) unless a reason says otherwise.
public struct TrainingOptions: Sendable, Equatable {
    /// T: BPTT length; state is carried across chunks but gradients are not.
    public var sequenceLength = 100
    /// B: the corpus is laid out as B contiguous streams stepped together.
    public var batchSize = 32
    public var optimizer: OptimizerKind = .adam
    public var learningRate: Float = 2e-3
    /// Global-norm clipping threshold; 0 disables.
    public var clip: Float = 5
    /// Dropout on each layer's output (between layers and before the head) during training.
    public var dropout: Float = 0
    /// The last fraction of the corpus tokens validates; the rest trains.
    public var validationFraction = 0.1
    /// Learning-rate schedule over the run's horizon (time limit or epochs).
    public var schedule: LearningRateSchedule = .constant
    /// Multiply the learning rate by this after every epoch (1 = no decay).
    public var epochDecay: Float = 1
    /// Stop after this many seconds of training (validation included), if set.
    public var timeLimit: Double?
    /// Stop after this many passes over the training split, if set.
    public var epochs: Double?
    public var seed: UInt64 = 0
    /// Seconds between validation passes; the final model is always validated.
    public var evaluationInterval: Double = 60
    /// Seconds between training-loss reports.
    public var reportInterval: Double = 5

    public init() {}

    public func validate() throws(RecurError) {
        func bad(_ m: String) -> RecurError { .invalidConfiguration(m) }
        guard sequenceLength >= 1 && sequenceLength <= 100_000 else { throw bad("--seq must be in 1...100000, got \(sequenceLength)") }
        guard batchSize >= 1 && batchSize <= 100_000 else { throw bad("--batch must be in 1...100000, got \(batchSize)") }
        guard learningRate > 0 && learningRate.isFinite else { throw bad("--lr must be a positive number, got \(learningRate)") }
        guard clip >= 0 && clip.isFinite else { throw bad("--clip must be 0 (off) or positive, got \(clip)") }
        guard dropout >= 0 && dropout < 1 else { throw bad("--dropout must be in [0, 1), got \(dropout)") }
        guard validationFraction >= 0 && validationFraction < 1 else { throw bad("--val-fraction must be in [0, 1), got \(validationFraction)") }
        guard epochDecay > 0 && epochDecay <= 1 else { throw bad("--lr-decay must be in (0, 1], got \(epochDecay)") }
        if let t = timeLimit, !(t > 0) { throw bad("--time-limit must be positive, got \(t)") }
        if let e = epochs, !(e > 0) { throw bad("--epochs must be positive, got \(e)") }
        if schedule == .cosine && timeLimit == nil && epochs == nil {
            throw bad("--schedule cosine needs a horizon: give --time-limit or --epochs")
        }
    }
}

/// The learning rate as a function of progress through the run.
public enum LearningRateSchedule: String, Sendable, Codable, CaseIterable {
    /// The base rate throughout (times `epochDecay` per epoch).
    case constant
    /// Cosine from the base rate down to 5% of it at the horizon (time limit or epochs,
    /// whichever is nearer), times `epochDecay` per epoch.
    case cosine
}
