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
        var best: UnitCorrelation?
        for k in 0..<config.layers {
            for vector in vectors {
                for j in 0..<config.hiddenSize {
                    let unit = HiddenUnit(layer: k, vector: vector, index: j)
                    let v = values(of: unit)
                    guard let r = pearson(v, feature) else { continue }
                    if best == nil || abs(r) > abs(best!.correlation) {
                        best = UnitCorrelation(unit: unit, correlation: r, values: v)
                    }
                }
            }
        }
        return best
    }
}
