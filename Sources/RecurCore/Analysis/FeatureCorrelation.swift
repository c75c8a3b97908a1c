/// The hidden unit whose activation over a text follows a feature most closely.
public struct UnitCorrelation: Sendable, Equatable {
    public var unit: HiddenUnit
    /// Pearson correlation between the unit's values and the feature's, in [-1, 1].
    public var correlation: Double
    /// The unit's value after each token (T).
    public var values: [Float]
}

/// Pearson correlation of two equally long series, or nil when either is constant (or shorter
/// than 2), where it is undefined.
public func pearson(_ x: [Float], _ y: [Float]) -> Double? {
    precondition(x.count == y.count, "series of \(x.count) and \(y.count) values")
    let n = Double(x.count)
    guard x.count >= 2 else { return nil }
    let mx = x.reduce(0.0) { $0 + Double($1) } / n, my = y.reduce(0.0) { $0 + Double($1) } / n
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for i in 0..<x.count {
        let dx = Double(x[i]) - mx, dy = Double(y[i]) - my
        sxy += dx * dy; sxx += dx * dx; syy += dy * dy
    }
    guard sxx > 0, syy > 0 else { return nil }
    return max(-1, min(1, sxy / (sxx * syy).squareRoot()))
}

extension ActivationTrace {
    /// The unit (any layer, h or LSTM c) with the largest |Pearson correlation| with `feature`
    /// (T values), ties going to the lower layer, h before c, then the lower index; nil when the
    /// feature is constant over the text.
    public func strongestUnit(for feature: [Float]) -> UnitCorrelation? {
        precondition(feature.count == steps, "feature has \(feature.count) values for \(steps) steps")
        let T = steps, H = config.hiddenSize
        guard T >= 2 else { return nil }
        let mean = feature.reduce(0.0) { $0 + Double($1) } / Double(T)
        let centred = feature.map { Double($0) - mean }
        let syy = centred.reduce(0) { $0 + $1 * $1 }
        guard syy > 0 else { return nil }
        // One pass per unit over the trace's rows (t + 1: block 0 is the zero state), without
        // building each unit's series: 2 layers × 2 vectors × 256 units × T adds up.
        var best: (unit: HiddenUnit, r: Double)?
        for k in 0..<config.layers {
            for vector in vectors {
                (vector == .h ? h[k] : c[k]).withUnsafeBufferPointer { all in
                    for j in 0..<H {
                        var sx = 0.0, sxx = 0.0, sxy = 0.0
                        for t in 0..<T {
                            let x = Double(all[(t + 1) * H + j])
                            sx += x; sxx += x * x; sxy += x * centred[t]
                        }
                        let vx = sxx - sx * sx / Double(T)
                        guard vx > 1e-12 * max(1, sxx) else { continue }
                        let r = max(-1, min(1, sxy / (vx * syy).squareRoot()))
                        if best == nil || abs(r) > abs(best!.r) { best = (HiddenUnit(layer: k, vector: vector, index: j), r) }
                    }
                }
            }
        }
        return best.map { UnitCorrelation(unit: $0.unit, correlation: $0.r, values: values(of: $0.unit)) }
    }
}
