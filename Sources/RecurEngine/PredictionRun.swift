import Foundation
import RecurCore

/// What a predict request asks for, checked.
struct PredictRequest {
    /// Tokens to generate.
    var count: Int
    /// 0 = greedy (argmax, ties to the lower id); otherwise sample from softmax(logprob / T).
    var temperature: Float
    /// Sample among the k most probable tokens only; nil = all.
    var topK: Int?
    var seed: UInt64
}

/// A continuation in progress: a private copy of the stream's state stepped in the engine's
/// batches like any stream, so a long prediction never stalls the others.
final class PredictionRun {
    let request: PredictRequest
    let V: Int
    /// (stateSize): the copy being advanced.
    let state: FloatBuffer
    /// (V): log-probabilities of the next token.
    let logProbs: FloatBuffer
    /// (V): logProbs / T, and their log-softmax (sampling only).
    let scaled: FloatBuffer
    let scaledLogProbs: FloatBuffer
    var rng: SeededGenerator
    /// Chosen tokens with their probability under the model (at temperature 1).
    var results: [TokenProbability] = []

    init(request: PredictRequest, from stream: StreamRecord, vocabularySize V: Int) {
        self.request = request
        self.V = V
        state = FloatBuffer(stream.state.count)
        state.p.update(from: stream.state.p, count: stream.state.count)
        logProbs = FloatBuffer(V)
        logProbs.p.update(from: stream.logProbs.p, count: V)
        let sampling = request.temperature > 0
        scaled = FloatBuffer(sampling ? V : 0)
        scaledLogProbs = FloatBuffer(sampling ? V : 0)
        rng = SeededGenerator(seed: request.seed)
        results.reserveCapacity(request.count)
    }

    var isFinished: Bool { results.count >= request.count }

    /// The token to step next: the last one chosen.
    var lastToken: Int32 { results[results.count - 1].token }

    /// Picks the next token from `logProbs` and records it.
    func choose() {
        let lp = logProbs.p
        let token: Int
        if request.temperature == 0 {
            var best = 0
            for j in 1..<V where lp[j] > lp[best] { best = j }
            token = best
        } else {
            token = sample()
        }
        results.append(TokenProbability(token: Int32(token), probability: expf(lp[token])))
    }

    /// Draws from softmax(logProbs / T), restricted to the top k, the way `Sampler` does.
    private func sample() -> Int {
        let t = request.temperature
        for j in 0..<V { scaled.p[j] = logProbs.p[j] / t }
        logSoftmax(scaled.p, count: V, into: scaledLogProbs.p)
        if let k = request.topK {
            let candidates = topK(scaledLogProbs.p, count: V, k: k)
            let total = candidates.reduce(Float(0)) { $0 + $1.probability }
            var u = rng.nextFloat() * total
            for c in candidates {
                u -= c.probability
                if u < 0 { return Int(c.token) }
            }
            return Int(candidates[candidates.count - 1].token)
        }
        var total: Float = 0
        for j in 0..<V { total += expf(scaledLogProbs.p[j]) }
        var u = rng.nextFloat() * total
        for j in 0..<V {
            u -= expf(scaledLogProbs.p[j])
            if u < 0 { return j }
        }
        return V - 1
    }
}
