/// A complete language model: shape, vocabulary, weights in one flat buffer, and where it came from.
public struct Model: Sendable {
    public var config: ModelConfig
    public var vocabulary: Vocabulary
    /// All parameters, laid out by `ParameterLayout(config)`.
    public var parameters: [Float]
    /// Free-form training provenance (command, corpus, seed, tokens seen, validation loss, ...),
    /// stored as string metadata in the model file.
    public var provenance: [String: String]

    public init(config: ModelConfig, vocabulary: Vocabulary, parameters: [Float],
                provenance: [String: String] = [:]) {
        precondition(parameters.count == ParameterLayout.countParameters(config),
                     "parameter count \(parameters.count) does not match the layout's \(ParameterLayout.countParameters(config))")
        precondition(vocabulary.count == config.vocabularySize,
                     "vocabulary has \(vocabulary.count) tokens but the config says \(config.vocabularySize)")
        self.config = config
        self.vocabulary = vocabulary
        self.parameters = parameters
        self.provenance = provenance
    }

    public var layout: ParameterLayout { ParameterLayout(config) }
}
