/// Which of a layer's state vectors a hidden unit belongs to: h (every cell) or the LSTM's c.
public enum StateVector: String, Sendable, CaseIterable {
    case h, c
}

/// A hidden unit: layer k (from 0), state vector, index j in 0..<H.
public struct HiddenUnit: Sendable, Equatable, Hashable {
    public var layer: Int
    public var vector: StateVector
    public var index: Int

    public init(layer: Int, vector: StateVector, index: Int) {
        self.layer = layer
        self.vector = vector
        self.index = index
    }
}

/// Every layer's activations over a text read as one stream from the zero state, captured from
/// the training forward pass (`Network.forward`, no dropout). Row t is the step that reads token
/// t, so T rows for T tokens.
///
/// Shape legend: T tokens, H hidden, G gates (PyTorch order: GRU r,z,n; LSTM i,f,g,o).
public struct ActivationTrace: Sendable {
    public let config: ModelConfig
    /// T.
    public let steps: Int
    /// Per layer: ((T+1), H): the zero state in block 0, then h after each token.
    public let h: [[Float]]
    /// Per layer, LSTM only (empty otherwise): ((T+1), H) cell states, laid out like `h`.
    public let c: [[Float]]
    /// Per layer: (T, G·H): the gate activations of each step (RNN: the new h).
    public let gates: [[Float]]

    /// Builds a trace from arrays laid out as documented (tests inject known activations).
    public init(config: ModelConfig, steps: Int, h: [[Float]], c: [[Float]], gates: [[Float]]) {
        let H = config.hiddenSize, GH = config.cell.gateCount * H
        precondition(h.count == config.layers && h.allSatisfy { $0.count == (steps + 1) * H },
                     "h needs \(config.layers) layers of \((steps + 1) * H) floats")
        precondition(config.cell != .lstm || (c.count == config.layers && c.allSatisfy { $0.count == (steps + 1) * H }),
                     "an LSTM trace needs c like h")
        precondition(gates.count == config.layers && gates.allSatisfy { $0.count == steps * GH },
                     "gates need \(config.layers) layers of \(steps * GH) floats")
        self.config = config
        self.steps = steps
        self.h = h
        self.c = c
        self.gates = gates
    }

    /// Runs `model` over `tokens` (at least one) and keeps every layer's activations.
    public init(model: Model, tokens: [Int32]) {
        precondition(!tokens.isEmpty, "a trace needs at least one token")
        let T = tokens.count, H = model.config.hiddenSize, GH = model.config.cell.gateCount * H
        let net = Network(config: model.config, steps: T, batch: 1)
        // Targets only feed the loss, which the trace ignores.
        let targets = [Int32](repeating: 0, count: T)
        tokens.withUnsafeBufferPointer { i in targets.withUnsafeBufferPointer { net.load(inputs: i, targets: $0) } }
        net.setInitialState(StateBatch(config: model.config, batch: 1))
        var rng = SeededGenerator(seed: 0)
        model.parameters.withUnsafeBufferPointer {
            _ = net.forward(parameters: $0.baseAddress!, training: false, rng: &rng)
        }
        let isLSTM = model.config.cell == .lstm
        self.init(config: model.config, steps: T,
                  h: net.layers.map { Array(UnsafeBufferPointer(start: $0.hs.p, count: (T + 1) * H)) },
                  c: isLSTM ? net.layers.map { Array(UnsafeBufferPointer(start: $0.cs.p, count: (T + 1) * H)) } : [],
                  gates: net.layers.map { Array(UnsafeBufferPointer(start: $0.gates.p, count: T * GH)) })
    }

    /// The T values of `unit` after each token.
    public func values(of unit: HiddenUnit) -> [Float] {
        let H = config.hiddenSize
        let all = unit.vector == .h ? h[unit.layer] : c[unit.layer]
        return (1...steps).map { all[$0 * H + unit.index] }
    }

    /// The state vectors this cell has (LSTM: h and c; others: h).
    public var vectors: [StateVector] { config.cell == .lstm ? [.h, .c] : [.h] }

    /// Writes the state after `prefix` tokens (0 = the zero state) into stream `b` of `state`.
    public func writeState(after prefix: Int, into state: StateBatch, stream b: Int) {
        precondition(prefix >= 0 && prefix <= steps, "prefix \(prefix) outside 0...\(steps)")
        let H = config.hiddenSize
        for k in 0..<config.layers {
            for j in 0..<H { state.h(layer: k)[b * H + j] = h[k][prefix * H + j] }
            if config.cell == .lstm {
                for j in 0..<H { state.c(layer: k)[b * H + j] = c[k][prefix * H + j] }
            }
        }
    }
}
