/// How often one gate unit is saturated: the fractions of steps its activation is below 0.1
/// (left) and above 0.9 (right), the axes of Karpathy, Johnson & Fei-Fei (2015), figure 4.
public struct UnitSaturation: Sendable, Equatable {
    public var left: Double
    public var right: Double
}

/// One sigmoid gate of one layer, with the saturation of each of its H units.
public struct GateSaturation: Sendable, Equatable {
    public var layer: Int
    /// The gate's name: LSTM "input", "forget", "output"; GRU "reset", "update".
    public var gate: String
    public var units: [UnitSaturation]

    /// Saturation of each unit from `activations` laid out (steps, stride) with the gate's H
    /// units at columns offset..<offset+H.
    public static func units(_ activations: [Float], steps: Int, stride: Int, offset: Int, count H: Int) -> [UnitSaturation] {
        precondition(activations.count >= steps * stride && offset + H <= stride,
                     "\(activations.count) activations cannot hold \(steps) steps of stride \(stride)")
        guard steps > 0 else { return [] }
        return (0..<H).map { j in
            var left = 0, right = 0
            for t in 0..<steps {
                let a = activations[t * stride + offset + j]
                if a < 0.1 { left += 1 } else if a > 0.9 { right += 1 }
            }
            return UnitSaturation(left: Double(left) / Double(steps), right: Double(right) / Double(steps))
        }
    }
}

extension ActivationTrace {
    /// Saturation of every sigmoid gate of every layer (LSTM i, f, o; GRU r, z). The tanh
    /// candidate (LSTM g, GRU n) ranges over (-1, 1) and is left out, as in the paper; a
    /// vanilla RNN has no gates and gives none.
    public func gateSaturation() -> [GateSaturation] {
        let named: [(String, Int)]
        switch config.cell {
        case .lstm: named = [("input", 0), ("forget", 1), ("output", 3)]
        case .gru: named = [("reset", 0), ("update", 1)]
        case .rnn: named = []
        }
        let H = config.hiddenSize, GH = config.cell.gateCount * H
        return (0..<config.layers).flatMap { k in
            named.map { name, block in
                GateSaturation(layer: k, gate: name,
                               units: GateSaturation.units(gates[k], steps: steps, stride: GH, offset: block * H, count: H))
            }
        }
    }
}
