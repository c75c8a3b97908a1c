import CRecurKernels

/// Inference: advances up to `maxBatch` streams by one token each, the way the daemon and
/// `recur eval` do. Weights are re-laid out once for the step: layer 0's input projection becomes
/// a (V, G·H) table (embedding · W_ih0ᵀ + biases, or W_ih0ᵀ + biases for one-hot input), and the
/// other matrices are transposed and packed (`WeightMatrix`) for `recur_packed_gemm`, whose
/// per-element summation order does not depend on the batch, so a stream's predictions are the
/// same whichever streams it is stepped with.
///
/// `precision` chooses the format of W_ihᵀ (layers above the first) and W_hhᵀ: fp32, bf16 or
/// int8, with the same batch-independent order; the table, the head, the state and the
/// pointwise math stay fp32 (see `Precision`).
public final class Stepper: @unchecked Sendable {
    public let model: Model
    public let maxBatch: Int
    /// The format of the recurrent and inner input weights.
    public let precision: Precision
    let config: ModelConfig

    /// (V, G·H): layer 0's gate input for each token, with b_ih0 (and b_hh0 except for GRU).
    let table0: FloatBuffer
    /// Per layer k > 0: W_ihᵀ (H, G·H) in `precision`; index 0 unused.
    let weightIHT: [WeightMatrix]
    /// Per layer: W_hhᵀ (H, G·H) in `precision`.
    let weightHHT: [WeightMatrix]
    /// Per layer: the bias added to the input part (b_ih, plus b_hh except for GRU).
    let biasIn: [FloatBuffer]
    /// Per layer, GRU only: b_hh (kept apart because r multiplies W_hn·h + b_hn).
    let biasHH: [FloatBuffer]
    /// W_headᵀ (H, V), always fp32, and b_head (V).
    let headT: WeightMatrix
    let headBias: FloatBuffer

    // Scratch, sized for maxBatch.
    let gates: FloatBuffer   // (B, G·H)
    let gh: FloatBuffer      // (B, 3H) GRU hidden part
    let ghn: FloatBuffer     // (B, H)
    let hNew: FloatBuffer    // (B, H)
    let cNew: FloatBuffer    // (B, H)
    let tanhC: FloatBuffer   // (B, H)
    /// (B, V): the logits of the last step.
    public let logits: FloatBuffer

    public init(model: Model, maxBatch: Int = 1, precision: Precision = .fp32) {
        precondition(maxBatch >= 1, "maxBatch \(maxBatch) must be positive")
        self.model = model
        self.maxBatch = maxBatch
        self.precision = precision
        let c = model.config
        config = c
        let layout = model.layout
        let V = c.vocabularySize, H = c.hiddenSize, GH = c.cell.gateCount * H
        let w = model.parameters

        /// A layer's matrix (outputs N, inputs K), packed as Wᵀ (K, N) for the products.
        func packed(_ slot: ParameterSlot, _ precision: Precision) -> WeightMatrix {
            w.withUnsafeBufferPointer {
                WeightMatrix(rowsOf: $0.baseAddress! + slot.offset, outputs: slot.shape[0], inputs: slot.shape[1], precision: precision)
            }
        }
        var biasIn: [FloatBuffer] = [], biasHH: [FloatBuffer] = []
        for l in layout.layers {
            let b = FloatBuffer(GH), bh = FloatBuffer(c.cell == .gru ? GH : 0)
            for g in 0..<GH {
                b[g] = w[l.biasIH.offset + g] + (c.cell == .gru ? 0 : w[l.biasHH.offset + g])
                if c.cell == .gru { bh[g] = w[l.biasHH.offset + g] }
            }
            biasIn.append(b); biasHH.append(bh)
        }
        self.biasIn = biasIn
        self.biasHH = biasHH

        // Layer 0 table: one row per token.
        let table = FloatBuffer(V * GH)
        let wih0 = layout.layers[0].weightIH
        if let emb = layout.embedding {
            let E = c.embeddingSize
            let wT = packed(wih0, .fp32)
            // Every token's row at once: the embedding (V, E) times W_ih0ᵀ.
            w.withUnsafeBufferPointer { all in
                recur_packed_gemm(wT.precision.weightFormat, Int64(V), Int64(GH), Int64(E), all.baseAddress! + emb.offset,
                                  Int64(E), wT.storage, nil, table.p, Int64(GH), 0)
            }
        } else {
            for g in 0..<GH { for v in 0..<V { table[v * GH + g] = w[wih0.offset + g * V + v] } }
        }
        for v in 0..<V { recur_vadd(Int64(GH), biasIn[0].p, table.p + v * GH) }
        table0 = table
        weightIHT = layout.layers.enumerated().map { k, l in
            k == 0 ? WeightMatrix(rowsOf: nil, outputs: 0, inputs: 0, precision: precision) : packed(l.weightIH, precision)
        }
        weightHHT = layout.layers.map { packed($0.weightHH, precision) }
        headT = packed(layout.headWeight, .fp32)
        headBias = FloatBuffer(Array(w[layout.headBias.range]))

        let B = maxBatch
        gates = FloatBuffer(B * GH)
        gh = FloatBuffer(c.cell == .gru ? B * GH : 0)
        ghn = FloatBuffer(c.cell == .gru ? B * H : 0)
        hNew = FloatBuffer(B * H)
        cNew = FloatBuffer(c.cell == .lstm ? B * H : 0)
        tanhC = FloatBuffer(c.cell == .lstm ? B * H : 0)
        logits = FloatBuffer(B * V)
    }

    /// Advances rows 0..<tokens.count of `state` by one token each and returns their logits
    /// (tokens.count, V), valid until the next call. Token ids must be < V.
    @discardableResult
    public func step(tokens: UnsafeBufferPointer<Int32>, state: StateBatch) -> UnsafePointer<Float> {
        InferencePool.shared.withPool { pool in step(tokens: tokens, state: state, pool: pool) }
    }

    /// Below this many multiply-adds a product runs on the calling thread: waking the pool would cost more.
    static let parallelThreshold = 1 << 15

    /// C (B, N) += A (B, K) · Wᵀ, plus A2 (B, K2) · W2ᵀ when given, in each matrix's format, split
    /// by columns over `pool` when it is worth waking it.
    @inline(__always)
    func product(_ pool: OpaquePointer?, _ B: Int, _ N: Int, _ K: Int, _ a: UnsafePointer<Float>, _ wT: WeightMatrix,
                 _ K2: Int = 0, _ a2: UnsafePointer<Float>? = nil, _ w2T: WeightMatrix? = nil,
                 into c: UnsafeMutablePointer<Float>) {
        let format = wT.precision.weightFormat
        if let pool, B * N * (K + K2) >= Self.parallelThreshold {
            recur_packed_gemm_parallel(pool, format, Int64(B), Int64(N), Int64(K), a, Int64(K), wT.storage, wT.scalePointer,
                                       Int64(K2), a2, Int64(K2), w2T?.storage, w2T?.scalePointer, c, Int64(N), 1)
        } else {
            recur_packed_gemm(format, Int64(B), Int64(N), Int64(K), a, Int64(K), wT.storage, wT.scalePointer, c, Int64(N), 1)
            if let a2, let w2T {
                recur_packed_gemm(format, Int64(B), Int64(N), Int64(K2), a2, Int64(K2), w2T.storage, w2T.scalePointer,
                                  c, Int64(N), 1)
            }
        }
    }

    /// From this many streams on, a step splits its rows (streams) over the pool, each thread
    /// taking its rows through every layer and the head with no synchronisation in between;
    /// below it, each product splits its columns instead (the one-stream latency case).
    static let rowSplitThreshold = 16

    /// The rows of the recurrent products' kernel block on this CPU.
    var rowTile: Int { Int(recur_packed_row_tile(precision.weightFormat)) }

    func step(tokens: UnsafeBufferPointer<Int32>, state: StateBatch, pool: OpaquePointer?) -> UnsafePointer<Float> {
        let B = tokens.count
        precondition(B <= maxBatch && B <= state.batch, "batch \(B) exceeds the stepper's \(maxBatch) or the state's \(state.batch)")
        for b in 0..<B {
            precondition(tokens[b] >= 0 && Int(tokens[b]) < config.vocabularySize,
                         "token id \(tokens[b]) outside the vocabulary of \(config.vocabularySize)")
        }
        guard let pool, B >= Self.rowSplitThreshold else {
            stepRows(tokens, state, 0, B, pool: pool)
            return UnsafePointer(logits.p)
        }
        let tile = rowTile
        InferencePool.run(pool) { index, count in
            // Rows in whole blocks of the kernel's row tile, as even as possible.
            let blocks = (B + tile - 1) / tile
            let r0 = min(B, blocks * index / count * tile), r1 = min(B, blocks * (index + 1) / count * tile)
            if r1 > r0 { self.stepRows(tokens, state, r0, r1, pool: nil) }
        }
        return UnsafePointer(logits.p)
    }

    /// Steps rows r0..<r1 of the batch through every layer and the head, touching only those
    /// rows of the state and of the scratch buffers (so disjoint ranges may run concurrently).
    func stepRows(_ tokens: UnsafeBufferPointer<Int32>, _ state: StateBatch, _ r0: Int, _ r1: Int,
                  pool: OpaquePointer?) {
        let B = r1 - r0, H = config.hiddenSize, V = config.vocabularySize
        let GH = config.cell.gateCount * H
        let g = gates.p + r0 * GH
        let hNew = hNew.p + r0 * H
        let kernels = CellKernels(config)
        for k in 0..<config.layers {
            let hk = state.h(layer: k) + r0 * H
            if k == 0 {
                for b in 0..<B { (g + b * GH).update(from: table0.p + Int(tokens[r0 + b]) * GH, count: GH) }
            } else {
                for b in 0..<B { (g + b * GH).update(from: biasIn[k].p, count: GH) }
            }
            // Layer k > 0 takes the layer below's new h (already written back to the state);
            // its input and recurrent products share one pass: gates += x·W_ihᵀ, then += h·W_hhᵀ.
            let below: UnsafePointer<Float>? = k > 0 ? UnsafePointer(state.h(layer: k - 1) + r0 * H) : nil
            let gh = gh.p + r0 * GH, cNew = cNew.p + r0 * H
            // The products: the recurrent one into the gates, or (GRU) apart, on b_hh.
            if kernels.separateRecurrentPart {
                if let below { product(pool, B, GH, H, below, weightIHT[k], into: g) }
                for b in 0..<B { (gh + b * GH).update(from: biasHH[k].p, count: GH) }
                product(pool, B, GH, H, hk, weightHHT[k], into: gh)
            } else if let below {
                product(pool, B, GH, H, below, weightIHT[k], H, hk, weightHHT[k], into: g)
            } else {
                product(pool, B, GH, H, hk, weightHHT[k], into: g)
            }
            // The new state is written beside the old, then becomes the state.
            let c = config.cell.stateVectors == 2 ? state.c(layer: k) + r0 * H : cNew
            kernels.forward(B: B, H: H, gates: g, gh: gh, hPrev: hk, cPrev: c, hNext: hNew,
                            cNext: cNew, tanhC: tanhC.p + r0 * H, ghn: ghn.p + r0 * H)
            hk.update(from: hNew, count: B * H)
            if config.cell.stateVectors == 2 { c.update(from: cNew, count: B * H) }
        }
        let top = UnsafePointer(state.h(layer: config.layers - 1) + r0 * H)
        let out = logits.p + r0 * V
        for b in 0..<B { (out + b * V).update(from: headBias.p, count: V) }
        product(pool, B, V, H, top, headT, into: out)
    }
}
