/// Generates text from a model, one stream, from the zero state.
public final class Sampler {
    public let model: Model
    let stepper: Stepper
    let state: StateBatch
    var rng: SeededGenerator
    let logProbs: UnsafeMutablePointer<Float>

    /// `precision`: the weights' format for the products (`Precision`; fp32 by default).
    public init(model: Model, seed: UInt64, precision: Precision = .fp32) {
        self.model = model
        stepper = Stepper(model: model, maxBatch: 1, precision: precision)
        state = StateBatch(config: model.config, batch: 1)
        rng = SeededGenerator(seed: seed)
        logProbs = .allocate(capacity: model.config.vocabularySize)
    }

    deinit { logProbs.deallocate() }

    /// Absorbs `prime` (at least one token), then draws `length` tokens, calling `emit` with each.
    /// `temperature` 0 means greedy; `topK` restricts sampling to the k most probable tokens.
    public func generate(prime: [Int32], length: Int, temperature: Float, topK k: Int?,
                         emit: (Int32) -> Void) {
        precondition(!prime.isEmpty, "sampling needs at least one prime token")
        precondition(temperature >= 0, "temperature \(temperature) must not be negative")
        let V = model.config.vocabularySize
        state.resetAll()
        var logits: UnsafePointer<Float>! = nil
        for t in prime {
            var token = t
            logits = withUnsafePointer(to: &token) { stepper.step(tokens: UnsafeBufferPointer(start: $0, count: 1), state: state) }
        }
        var scaled = [Float](repeating: 0, count: V)
        for _ in 0..<length {
            var next: Int32
            if temperature == 0 {
                var best = 0
                for j in 1..<V where logits[j] > logits[best] { best = j }
                next = Int32(best)
            } else {
                for j in 0..<V { scaled[j] = logits[j] / temperature }
                scaled.withUnsafeBufferPointer { logSoftmax($0.baseAddress!, count: V, into: logProbs) }
                let candidates = k.map { RecurCore.topK(logProbs, count: V, k: $0) }
                    ?? (0..<V).map { TokenProbability(token: Int32($0), probability: expf_(logProbs[$0])) }
                let total = candidates.reduce(Float(0)) { $0 + $1.probability }
                var u = rng.nextFloat() * total
                next = candidates.last!.token
                for c in candidates {
                    u -= c.probability
                    if u < 0 { next = c.token; break }
                }
            }
            emit(next)
            logits = withUnsafePointer(to: &next) { stepper.step(tokens: UnsafeBufferPointer(start: $0, count: 1), state: state) }
        }
    }
}
