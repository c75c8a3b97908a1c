extension Model {
    /// A freshly initialised model, with PyTorch's default initialisation: recurrent weights and
    /// biases U(-1/√H, 1/√H), embedding N(0, 1), head weight and bias U(-1/√H, 1/√H).
    public static func random(config: ModelConfig, vocabulary: Vocabulary, seed: UInt64) -> Model {
        let layout = ParameterLayout(config)
        var params = [Float](repeating: 0, count: layout.totalCount)
        var rng = SeededGenerator(seed: seed)
        let bound = 1 / Float(config.hiddenSize).squareRoot()
        for slot in layout.slots {
            let isEmbedding = slot.name == "embedding.weight"
            for i in slot.range {
                params[i] = isEmbedding ? rng.normal() : rng.uniform(-bound, bound)
            }
        }
        return Model(config: config, vocabulary: vocabulary, parameters: params)
    }
}
