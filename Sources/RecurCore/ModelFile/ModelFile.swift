/// The metadata keys of a recur model file (docs/MODEL-FORMAT.md). The PyTorch fixture and
/// export scripts write the same keys, so they are part of the format: never rename them.
enum ModelFileKey {
    static let format = "format"
    static let formatVersion = "format_version"
    static let cell = "cell"
    static let nonlinearity = "nonlinearity"
    static let vocabularySize = "vocab_size"
    static let hiddenSize = "hidden_size"
    static let layers = "num_layers"
    static let embeddingSize = "embedding_size"
    static let tokenizer = "tokenizer"
    static let unknown = "unknown"
    static let vocabulary = "vocabulary"
    static let provenance = "provenance"

    static let formatName = "recur-lm"
    static let currentVersion = "1"
}

extension Model {
    /// Reads a model from the bytes of a recur safetensors file, validating everything a
    /// hostile file could get wrong before trusting it: the safetensors structure, the
    /// format keys, the sizes (`ModelConfig.validate()`, before any large allocation), the
    /// vocabulary (count, order, duplicates), each tensor's presence and exact shape, the
    /// absence of unexpected tensors, and finite weights. F16 and BF16 become `Float`.
    /// - Throws: `.invalidModelFile` naming the offending key or tensor.
    public init(safetensors bytes: [UInt8]) throws(RecurError) {
        func bad(_ message: String) -> RecurError { .invalidModelFile(message) }
        let file = try SafeTensorsFile(bytes: bytes)
        let metadata = file.metadata

        func string(_ key: String) throws(RecurError) -> String {
            guard let value = metadata[key] else {
                throw bad("the metadata has no '\(key)' entry; recur model files carry the keys listed in docs/MODEL-FORMAT.md")
            }
            return value
        }
        func choice<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type) throws(RecurError) -> T where T.RawValue == String {
            let value = try string(key)
            guard let parsed = T(rawValue: value) else {
                let allowed = T.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
                throw bad("metadata '\(key)' is '\(value)', not one of \(allowed)")
            }
            return parsed
        }
        func size(_ key: String) throws(RecurError) -> Int {
            let value = try string(key)
            guard !value.isEmpty, value.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let parsed = Int(value) else {
                throw bad("metadata '\(key)' is '\(value)', not a decimal integer that fits 64 bits")
            }
            return parsed
        }

        let format = try string(ModelFileKey.format)
        guard format == ModelFileKey.formatName else {
            throw bad("metadata 'format' is '\(format)', not '\(ModelFileKey.formatName)'; this is not a recur model")
        }
        let version = try string(ModelFileKey.formatVersion)
        guard version == ModelFileKey.currentVersion else {
            throw bad("format version '\(version)' is not supported; this build reads version \(ModelFileKey.currentVersion)")
        }
        let config = ModelConfig(
            cell: try choice(ModelFileKey.cell, CellKind.self),
            nonlinearity: try choice(ModelFileKey.nonlinearity, Nonlinearity.self),
            vocabularySize: try size(ModelFileKey.vocabularySize),
            hiddenSize: try size(ModelFileKey.hiddenSize),
            layers: try size(ModelFileKey.layers),
            embeddingSize: try size(ModelFileKey.embeddingSize))
        do {
            try config.validate()
        } catch {
            throw bad("the sizes in the metadata are unusable: \(error.sentence)")
        }

        let kind = try choice(ModelFileKey.tokenizer, TokenizerKind.self)
        let policy = try choice(ModelFileKey.unknown, UnknownPolicy.self)
        let vocabulary = try Self.parseVocabulary(try string(ModelFileKey.vocabulary), kind: kind,
                                                  policy: policy, expectedCount: config.vocabularySize)

        let layout = ParameterLayout(config)
        var entries: [SafeTensorsFile.Entry] = []
        for slot in layout.slots {
            guard let entry = file.entry(named: slot.name) else {
                throw bad("tensor '\(slot.name)' is missing; a \(config.cell.rawValue) model of these sizes needs \(layout.slots.map(\.name).joined(separator: ", "))")
            }
            guard entry.shape == slot.shape else {
                throw bad("tensor '\(slot.name)' has shape \(entry.shape) but the metadata implies \(slot.shape)")
            }
            guard entry.dtype.isFloat else {
                throw bad("tensor '\(slot.name)' has dtype \(entry.dtype.rawValue); weights must be F32, F16 or BF16")
            }
            entries.append(entry)
        }
        let expected = Set(layout.slots.map(\.name))
        if let extra = file.entries.first(where: { !expected.contains($0.name) }) {
            let hint = config.usesEmbedding ? "" : " (embedding_size is 0, so the model takes one-hot input and has no embedding)"
            throw bad("tensor '\(extra.name)' is not part of a \(config.cell.rawValue) model with these sizes\(hint)")
        }

        // Every tensor now matches the layout and its bytes exist in the file, so the
        // allocation is justified by the file's size.
        var parameters = [Float](repeating: 0, count: layout.totalCount)
        for (slot, entry) in zip(layout.slots, entries) {
            try file.copyFloats(entry, into: &parameters, at: slot.offset)
            if let index = parameters[slot.range].firstIndex(where: { !$0.isFinite }) {
                throw bad("tensor '\(slot.name)' holds \(parameters[index]) at element \(index - slot.offset); weights must be finite")
            }
        }

        var provenance: [String: String] = [:]
        if let text = metadata[ModelFileKey.provenance] {
            let json = try JSONValue.parseModelFileText(text, what: "metadata 'provenance'")
            guard let members = json.objectMembers else { throw bad("metadata 'provenance' is not a JSON object") }
            for member in members {
                let (key, value) = (member.key, member.value)
                guard let string = value.stringValue else {
                    throw bad("provenance entry '\(key)' is not a string")
                }
                provenance[key] = string
            }
        }
        self.init(config: config, vocabulary: vocabulary, parameters: parameters, provenance: provenance)
    }

    private static func parseVocabulary(_ text: String, kind: TokenizerKind, policy: UnknownPolicy,
                                        expectedCount: Int) throws(RecurError) -> Vocabulary {
        // One array plus V strings; a longer list stops the parse before it grows the tree.
        let json = try JSONValue.parseModelFileText(text, what: "metadata 'vocabulary'", maxValues: expectedCount + 1)
        guard let elements = json.arrayElements else {
            throw .invalidModelFile("metadata 'vocabulary' is not a JSON array of token strings")
        }
        guard elements.count == expectedCount else {
            throw .invalidModelFile("metadata 'vocabulary' has \(elements.count) tokens but vocab_size is \(expectedCount)")
        }
        var tokens: [String] = []
        tokens.reserveCapacity(elements.count)
        for (i, element) in elements.enumerated() {
            guard let token = element.stringValue else {
                throw .invalidModelFile("vocabulary entry \(i) is not a string")
            }
            tokens.append(token)
        }
        let vocabulary = Vocabulary(kind: kind, tokens: tokens, unknownPolicy: policy)
        if let problem = vocabulary.validationProblem {
            throw .invalidModelFile("the vocabulary is unusable: \(problem)")
        }
        return vocabulary
    }

    /// The model as a recur safetensors file: tensors in `ParameterLayout` order, metadata as
    /// in docs/MODEL-FORMAT.md. `.float32` is bit-exact; the half formats halve the size.
    public func safetensorsBytes(storage: StorageType = .float32) -> [UInt8] {
        let layout = self.layout
        let tensors = layout.slots.map {
            SafeTensorsFile.Tensor(name: $0.name, shape: $0.shape, values: parameters[$0.range])
        }
        let metadata: [String: String] = [
            ModelFileKey.format: ModelFileKey.formatName,
            ModelFileKey.formatVersion: ModelFileKey.currentVersion,
            ModelFileKey.cell: config.cell.rawValue,
            ModelFileKey.nonlinearity: config.nonlinearity.rawValue,
            ModelFileKey.vocabularySize: String(config.vocabularySize),
            ModelFileKey.hiddenSize: String(config.hiddenSize),
            ModelFileKey.layers: String(config.layers),
            ModelFileKey.embeddingSize: String(config.embeddingSize),
            ModelFileKey.tokenizer: vocabulary.kind.rawValue,
            ModelFileKey.unknown: vocabulary.unknownPolicy.rawValue,
            ModelFileKey.vocabulary: JSONString.stringArray(vocabulary.tokens),
            ModelFileKey.provenance: JSONString.stringObject(provenance),
        ]
        return SafeTensorsFile.serialize(tensors, metadata: metadata, storage: storage)
    }
}
