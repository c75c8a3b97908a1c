import CRecurKernels

/// One candidate next token and its probability.
public struct TokenProbability: Sendable, Equatable {
    public var token: Int32
    public var probability: Float
    public init(token: Int32, probability: Float) {
        self.token = token
        self.probability = probability
    }
}

/// Numerically stable log-softmax of one row of V logits into `out`.
public func logSoftmax(_ logits: UnsafePointer<Float>, count V: Int, into out: UnsafeMutablePointer<Float>) {
    recur_log_softmax(Int64(V), logits, out)
}

/// The k most probable tokens of a row of log-probabilities, most probable first (ties: lower id).
public func topK(_ logProbs: UnsafePointer<Float>, count V: Int, k: Int) -> [TokenProbability] {
    let k = min(k, V)
    guard k > 0 else { return [] }
    // Small k: keep a sorted buffer; V is at most a few thousand in practice.
    var best: [(Float, Int32)] = []
    best.reserveCapacity(k + 1)
    for j in 0..<V {
        let lp = logProbs[j]
        if best.count == k, lp <= best[k - 1].0 { continue }
        var i = best.count
        while i > 0 && best[i - 1].0 < lp { i -= 1 }
        best.insert((lp, Int32(j)), at: i)
        if best.count > k { best.removeLast() }
    }
    return best.map { TokenProbability(token: $0.1, probability: expf_($0.0)) }
}
