import CRecurKernels

/// Forward and backward of a stacked recurrent language model over a chunk of T steps for B
/// streams at once (truncated BPTT). Rows are time-major: row r = t·B + b.
///
/// Shape legend: V vocab, E embedding, H hidden, G gates, L layers, I_k input width of layer k,
/// N = T·B rows. Every buffer is allocated once for the (T, B) it was built for.
public final class Network {
    public let config: ModelConfig
    public let layout: ParameterLayout
    public let steps: Int   // T
    public let batch: Int   // B

    /// One layer's saved activations, kept for the backward pass.
    final class LayerBuffers {
        /// (N, I_k): the layer's input. Unused for one-hot layer 0 (it reads token ids).
        let input: FloatBuffer
        /// (N, G·H): pre-activations, replaced in place by the activations (RNN: f(a); GRU: r,z,n; LSTM: i,f,g,o).
        let gates: FloatBuffer
        /// ((T+1)·B, H): h_{-1} in block 0, then h_0 ... h_{T-1}.
        let hs: FloatBuffer
        /// ((T+1)·B, H): LSTM cell states, laid out like `hs`.
        let cs: FloatBuffer
        /// (N, H): LSTM tanh(c_t).
        let tanhC: FloatBuffer
        /// (N, H): GRU W_hn·h + b_hn, needed by the gradient of r.
        let ghn: FloatBuffer
        /// (N, H): dropout mask already scaled by 1/(1-p) (empty without dropout).
        let mask: FloatBuffer
        /// W_hhᵀ (H, G·H) packed at every forward pass for the per-step products h_{t-1} · W_hhᵀ
        /// (`recur_packed_gemm`).
        let packedHHT: FloatBuffer
        /// W_hh (G·H, H) packed at every backward pass for the per-step d h_{t-1} = d a · W_hh.
        let packedHH: FloatBuffer

        init(config: ModelConfig, layer k: Int, steps T: Int, batch B: Int, dropout: Bool) {
            let H = config.hiddenSize, GH = config.cell.gateCount * H, N = T * B
            let needsInput = !(k == 0 && !config.usesEmbedding)
            input = FloatBuffer(needsInput ? N * config.inputSize(layer: k) : 0)
            gates = FloatBuffer(N * GH)
            hs = FloatBuffer((T + 1) * B * H)
            cs = FloatBuffer(config.cell == .lstm ? (T + 1) * B * H : 0)
            tanhC = FloatBuffer(config.cell == .lstm ? N * H : 0)
            ghn = FloatBuffer(config.cell == .gru ? N * H : 0)
            mask = FloatBuffer(dropout ? N * H : 0)
            let f32 = Int32(RECUR_WEIGHTS_F32)
            packedHHT = FloatBuffer(Int(recur_packed_bytes(f32, Int64(H), Int64(GH))) / 4)
            packedHH = FloatBuffer(Int(recur_packed_bytes(f32, Int64(GH), Int64(H))) / 4)
        }
    }

    let layers: [LayerBuffers]
    /// (N, H): the top layer's output after dropout, the head's input.
    let top: FloatBuffer
    /// (N, V): logits, then (in backward) their gradient.
    public let logits: FloatBuffer
    /// (N): the input token of each row.
    let tokens: UnsafeMutablePointer<Int32>
    /// (N): the target token of each row.
    let targets: UnsafeMutablePointer<Int32>

    // Backward scratch.
    let dGatesIH: FloatBuffer   // (N, G·H)
    let dGatesHH: FloatBuffer   // (N, G·H), GRU only (LSTM and RNN share dGatesIH)
    let dOut: FloatBuffer       // (N, max(H, E)): gradient at a layer's output / input
    let dInput: FloatBuffer     // (N, max(H, E))
    let dh: FloatBuffer         // (B, H)
    let dhNext: FloatBuffer     // (B, H)
    let dc: FloatBuffer         // (B, H)
    let ghScratch: FloatBuffer  // (B, 3H) GRU per-step hidden part
    let transposedIH: FloatBuffer // (V, G·H) one-hot layer 0: W_ih0 transposed, then its gradient
    let dWeightT: FloatBuffer   // (max(H, E), G·H): a weight gradient, transposed

    public let dropout: Float
    /// T of the last forward pass (a chunk may be shorter than `steps`).
    public internal(set) var lastSteps: Int

    public init(config: ModelConfig, steps: Int, batch: Int, dropout: Float = 0) {
        precondition(steps >= 1 && batch >= 1, "steps \(steps) and batch \(batch) must be positive")
        precondition(dropout >= 0 && dropout < 1, "dropout \(dropout) must be in [0, 1)")
        self.config = config
        self.layout = ParameterLayout(config)
        self.steps = steps
        self.batch = batch
        self.dropout = dropout
        self.lastSteps = steps
        let T = steps, B = batch, N = T * B, H = config.hiddenSize, V = config.vocabularySize
        let GH = config.cell.gateCount * H
        layers = (0..<config.layers).map {
            LayerBuffers(config: config, layer: $0, steps: T, batch: B, dropout: dropout > 0)
        }
        top = FloatBuffer(N * H)
        logits = FloatBuffer(N * V)
        tokens = .allocate(capacity: N)
        tokens.initialize(repeating: 0, count: N)
        targets = .allocate(capacity: N)
        targets.initialize(repeating: 0, count: N)
        let wide = max(H, config.embeddingSize)
        dGatesIH = FloatBuffer(N * GH)
        dGatesHH = FloatBuffer(config.cell == .gru ? N * GH : 0)
        dOut = FloatBuffer(N * wide)
        dInput = FloatBuffer(N * wide)
        dh = FloatBuffer(B * H)
        dhNext = FloatBuffer(B * H)
        dc = FloatBuffer(B * H)
        ghScratch = FloatBuffer(config.cell == .gru ? B * GH : 0)
        transposedIH = FloatBuffer(config.usesEmbedding ? 0 : V * GH)
        dWeightT = FloatBuffer(wide * GH)
    }

    deinit {
        tokens.deallocate()
        targets.deallocate()
    }

    /// Sets the chunk's input and target tokens, both (N) time-major.
    public func load(inputs: UnsafeBufferPointer<Int32>, targets t: UnsafeBufferPointer<Int32>) {
        let N = steps * batch
        precondition(inputs.count == N && t.count == N, "expected \(N) tokens, got \(inputs.count) and \(t.count)")
        tokens.update(from: inputs.baseAddress!, count: N)
        targets.update(from: t.baseAddress!, count: N)
    }

    /// Writes the initial state (per layer h and, for LSTM, c; each (B, H)) from a `StateBatch`.
    public func setInitialState(_ state: StateBatch) {
        precondition(state.batch == batch, "state batch \(state.batch) differs from the network's \(batch)")
        let BH = batch * config.hiddenSize
        for (k, l) in layers.enumerated() {
            l.hs.p.update(from: state.h(layer: k), count: BH)
            if config.cell == .lstm { l.cs.p.update(from: state.c(layer: k), count: BH) }
        }
    }

    /// Copies the state after the last step into `state` (the next chunk's initial state).
    public func getFinalState(_ state: StateBatch) {
        let BH = batch * config.hiddenSize, T = lastSteps
        for (k, l) in layers.enumerated() {
            state.h(layer: k).update(from: l.hs.p + T * BH, count: BH)
            if config.cell == .lstm { state.c(layer: k).update(from: l.cs.p + T * BH, count: BH) }
        }
    }

    /// Writes log p(target | history) of the last forward pass's rows into `out` (N rows).
    public func targetLogProbs(into out: UnsafeMutablePointer<Float>) {
        let V = config.vocabularySize
        for r in 0..<(lastSteps * batch) {
            let row = logits.p + r * V
            var m = row[0]
            for j in 1..<V where row[j] > m { m = row[j] }
            var s: Double = 0
            for j in 0..<V { s += Double(expf_(row[j] - m)) }
            out[r] = row[Int(targets[r])] - m - Float(_log(s))
        }
    }

    /// The top layer's hidden state h_t for every row (N, H), before dropout.
    public var topHidden: UnsafePointer<Float> {
        UnsafePointer(layers[layers.count - 1].hs.p + batch * config.hiddenSize)
    }
}

/// The recurrent state of B streams: per layer, h (B, H) and for LSTM c (B, H), in one buffer
/// laid out [layer][h, c][B][H].
public final class StateBatch: @unchecked Sendable {
    public let config: ModelConfig
    public let batch: Int
    public let storage: FloatBuffer

    public init(config: ModelConfig, batch: Int) {
        self.config = config
        self.batch = batch
        storage = FloatBuffer(config.stateSize * batch)
    }

    public func h(layer k: Int) -> UnsafeMutablePointer<Float> {
        storage.p + k * config.cell.stateVectors * batch * config.hiddenSize
    }

    public func c(layer k: Int) -> UnsafeMutablePointer<Float> {
        precondition(config.cell == .lstm, "only an LSTM has a cell state")
        return h(layer: k) + batch * config.hiddenSize
    }

    /// Zeroes stream b's state in every layer (a stream that starts over).
    public func reset(stream b: Int) {
        let H = config.hiddenSize
        for k in 0..<config.layers {
            (h(layer: k) + b * H).update(repeating: 0, count: H)
            if config.cell == .lstm { (c(layer: k) + b * H).update(repeating: 0, count: H) }
        }
    }

    public func resetAll() { storage.zero() }
}
