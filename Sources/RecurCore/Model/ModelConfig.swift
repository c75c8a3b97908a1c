/// The recurrent cell of every layer. Gate counts follow PyTorch's `nn.RNN`, `nn.GRU`, `nn.LSTM`.
public enum CellKind: String, Sendable, Codable, CaseIterable {
    case rnn, gru, lstm

    /// G: how many H-sized blocks the gate matrices stack (PyTorch order: GRU r,z,n; LSTM i,f,g,o).
    public var gateCount: Int {
        switch self {
        case .rnn: 1
        case .gru: 3
        case .lstm: 4
        }
    }

    /// How many H-sized vectors one layer's state holds (LSTM carries h and c).
    public var stateVectors: Int { self == .lstm ? 2 : 1 }
}

/// The vanilla RNN's activation f in h_t = f(W_ih·x_t + b_ih + W_hh·h_{t-1} + b_hh).
public enum Nonlinearity: String, Sendable, Codable, CaseIterable {
    case tanh, relu
}

/// The shape of a language model. Shape legend used across RecurCore:
/// V vocabulary, E embedding width (0 = one-hot input), H hidden width, L layers,
/// G gate count, I_k input width of layer k (E, or V for one-hot, at k = 0; H above).
public struct ModelConfig: Sendable, Equatable, Codable {
    public var cell: CellKind
    /// Only meaningful for `.rnn`; LSTM and GRU have fixed activations.
    public var nonlinearity: Nonlinearity
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layers: Int
    /// 0 means one-hot input (no embedding), as in the classic min-char-rnn.
    public var embeddingSize: Int

    /// Upper bounds that keep a hostile model file from asking for absurd allocations.
    public static let maxVocabulary = 1 << 22
    public static let maxHidden = 1 << 14
    public static let maxLayers = 64
    public static let maxParameters = 1 << 31

    public init(cell: CellKind, nonlinearity: Nonlinearity = .tanh, vocabularySize: Int,
                hiddenSize: Int, layers: Int = 1, embeddingSize: Int = 0) {
        self.cell = cell
        self.nonlinearity = nonlinearity
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.embeddingSize = embeddingSize
    }

    public var usesEmbedding: Bool { embeddingSize > 0 }

    /// I_k: the width of layer k's input.
    public func inputSize(layer: Int) -> Int {
        layer == 0 ? (usesEmbedding ? embeddingSize : vocabularySize) : hiddenSize
    }

    /// Floats of recurrent state per stream: L layers × (h, and c for LSTM) × H.
    public var stateSize: Int { layers * cell.stateVectors * hiddenSize }

    /// Checks the sizes a user or a file supplied; the message says what is wrong.
    public func validate() throws(RecurError) {
        func bad(_ message: String) -> RecurError { .invalidConfiguration(message) }
        guard vocabularySize >= 1, vocabularySize <= Self.maxVocabulary else {
            throw bad("vocabulary size \(vocabularySize) is outside 1...\(Self.maxVocabulary)")
        }
        guard hiddenSize >= 1, hiddenSize <= Self.maxHidden else {
            throw bad("hidden size \(hiddenSize) is outside 1...\(Self.maxHidden)")
        }
        guard layers >= 1, layers <= Self.maxLayers else {
            throw bad("layer count \(layers) is outside 1...\(Self.maxLayers)")
        }
        guard embeddingSize >= 0, embeddingSize <= Self.maxHidden else {
            throw bad("embedding size \(embeddingSize) is outside 0...\(Self.maxHidden)")
        }
        let count = ParameterLayout.countParameters(self)
        guard count <= Self.maxParameters else {
            throw bad("the model would have \(count) parameters, more than the limit of \(Self.maxParameters)")
        }
    }
}
