/// One named tensor inside the flat parameter buffer, with PyTorch's name and shape.
public struct ParameterSlot: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var offset: Int
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

/// All parameters live in one flat `[Float]`; this names the views into it, in the order and
/// with the names of the PyTorch module documented in docs/MODEL-FORMAT.md:
///
///     embedding.weight   (V, E)        absent for one-hot input
///     rnn.weight_ih_l{k} (G·H, I_k)    gates stacked in PyTorch order
///     rnn.weight_hh_l{k} (G·H, H)
///     rnn.bias_ih_l{k}   (G·H)
///     rnn.bias_hh_l{k}   (G·H)
///     head.weight        (V, H)
///     head.bias          (V)
public struct ParameterLayout: Sendable, Equatable {
    public let config: ModelConfig
    public let slots: [ParameterSlot]
    public let totalCount: Int

    /// Offsets of one layer's four tensors.
    public struct Layer: Sendable, Equatable {
        public var weightIH: ParameterSlot
        public var weightHH: ParameterSlot
        public var biasIH: ParameterSlot
        public var biasHH: ParameterSlot
    }

    public let embedding: ParameterSlot?
    public let layers: [Layer]
    public let headWeight: ParameterSlot
    public let headBias: ParameterSlot

    public init(_ config: ModelConfig) {
        self.config = config
        var slots: [ParameterSlot] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) -> ParameterSlot {
            let slot = ParameterSlot(name: name, shape: shape, offset: offset)
            offset += slot.count
            slots.append(slot)
            return slot
        }
        let V = config.vocabularySize, H = config.hiddenSize, GH = config.cell.gateCount * H
        embedding = config.usesEmbedding ? add("embedding.weight", [V, config.embeddingSize]) : nil
        var layers: [Layer] = []
        for k in 0..<config.layers {
            let I = config.inputSize(layer: k)
            let wih = add("rnn.weight_ih_l\(k)", [GH, I])
            let whh = add("rnn.weight_hh_l\(k)", [GH, H])
            let bih = add("rnn.bias_ih_l\(k)", [GH])
            let bhh = add("rnn.bias_hh_l\(k)", [GH])
            layers.append(Layer(weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh))
        }
        self.layers = layers
        headWeight = add("head.weight", [V, H])
        headBias = add("head.bias", [V])
        self.slots = slots
        self.totalCount = offset
    }

    public func slot(named name: String) -> ParameterSlot? {
        slots.first { $0.name == name }
    }

    /// Parameter count without building the layout (overflow-safe for hostile sizes).
    public static func countParameters(_ c: ModelConfig) -> Int {
        let V = c.vocabularySize, H = c.hiddenSize, GH = c.cell.gateCount * H
        var total = V * c.embeddingSize + V * H + V
        for k in 0..<min(c.layers, ModelConfig.maxLayers) {
            total += GH * (c.inputSize(layer: k) + H + 2)
        }
        return total
    }
}
