import CRecurKernels

extension Network {
    /// Backpropagates the mean cross-entropy of the last `forward` through the chunk, adding
    /// d loss / d parameter into `grads` (same layout as the parameters). The incoming state is
    /// treated as a constant (truncated BPTT). Overwrites `logits` with their gradient.
    ///
    /// With `lastStepOnly`, the loss is instead the mean cross-entropy of the last step's B rows
    /// alone (what `MemoryReach` differentiates: one prediction per stream). Either way, afterwards
    /// `dGatesIH` holds layer 0's gate gradient (N, G·H) and, for embedding models, `dInput`
    /// the gradient at layer 0's input rows (N, E).
    public func backward(parameters w: UnsafePointer<Float>, grads d: UnsafeMutablePointer<Float>,
                         lastStepOnly: Bool = false) {
        let T = lastSteps, B = batch, N = T * B, H = config.hiddenSize, V = config.vocabularySize
        let GH = config.cell.gateCount * H

        // d logits = (softmax - onehot) / N, or / B on the last step's rows and 0 elsewhere.
        recur_softmax_xent(Int64(N), Int64(V), logits.p, targets, logits.p,
                           1 / Float(lastStepOnly ? B : N))
        if lastStepOnly { logits.p.update(repeating: 0, count: (T - 1) * B * V) }
        let dlogits = UnsafePointer(logits.p)
        // d W_head (V, H) += d logitsᵀ (V, N) · top (N, H); d b_head += Σ rows.
        sgemm(transA: true, m: V, n: H, k: N, a: dlogits, lda: V, b: top.p, ldb: H, beta: 1,
              c: d + layout.headWeight.offset, ldc: H)
        recur_colsum(Int64(N), Int64(V), dlogits, d + layout.headBias.offset)
        // d top (N, H) = d logits (N, V) · W_head (V, H).
        sgemm(m: N, n: H, k: V, a: dlogits, lda: V, b: w + layout.headWeight.offset, ldb: H,
              c: dOut.p, ldc: H)

        for k in stride(from: config.layers - 1, through: 0, by: -1) {
            let l = layers[k], slots = layout.layers[k], I = config.inputSize(layer: k)
            let wih = w + slots.weightIH.offset, whh = w + slots.weightHH.offset
            let dGI = dGatesIH.p
            let kernels = CellKernels(config)
            let dGH = kernels.separateRecurrentPart ? dGatesHH.p : dGatesIH.p

            // Through dropout: d out = d (dropped out) ⊙ mask.
            if dropout > 0 && l.mask.count > 0 {
                for i in 0..<(N * H) { dOut.p[i] *= l.mask.p[i] }
            }

            dhNext.zero()
            dc.zero()
            recur_pack_weights(Int32(RECUR_WEIGHTS_F32), Int64(GH), Int64(H), whh, Int64(H), l.packedHH.p, nil)
            InferencePool.shared.withPool { pool in
                for t in stride(from: T - 1, through: 0, by: -1) {
                    let hPrev = l.hs.p + t * B * H
                    // dh = d output_t + gradient arriving from step t+1.
                    dh.p.update(from: dOut.p + t * B * H, count: B * H)
                    recur_vadd(Int64(B * H), dhNext.p, dh.p)
                    let gi = dGI + t * B * GH, gh = dGH + t * B * GH
                    kernels.backward(B: B, H: H, gates: l.gates.p + t * B * GH, hPrev: hPrev, hNext: l.hs.p + (t + 1) * B * H,
                                     cPrev: l.cs.p + t * B * H, tanhC: l.tanhC.p + t * B * H, ghn: l.ghn.p + t * B * H,
                                     dh: dh.p, dc: dc.p, dgi: gi, dgh: gh, dhPrev: dhNext.p)
                    // d h_{t-1} (+)= d(recurrent part) · W_hh: on top of GRU's direct part, else alone.
                    recurrentProduct(pool, B, H, GH, gh, l.packedHH.p, into: dhNext.p,
                                     accumulate: kernels.separateRecurrentPart)
                }
            }

            // Weight gradients for the whole chunk at once, each as its transpose first:
            // d W_hhᵀ (H, GH) = h_{t-1} rowsᵀ (H, N) · dGH (N, GH), then added to d W_hh (GH, H).
            // (oneDNN runs this shape at over twice the speed of the direct dGHᵀ · h.)
            sgemm(transA: true, m: H, n: GH, k: N, a: l.hs.p, lda: H, b: dGH, ldb: GH,
                  c: dWeightT.p, ldc: GH)
            recur_add_transposed(Int64(H), Int64(GH), dWeightT.p, d + slots.weightHH.offset)
            recur_colsum(Int64(N), Int64(GH), dGH, d + slots.biasHH.offset)
            recur_colsum(Int64(N), Int64(GH), dGI, d + slots.biasIH.offset)

            if k == 0 && !config.usesEmbedding {
                // One-hot: d W_ih0[:, x] += dGI row, gathered in the transposed layout first.
                let dwt = transposedIH.p
                transposedIH.zero()
                for r in 0..<N { recur_vadd(Int64(GH), dGI + r * GH, dwt + Int(tokens[r]) * GH) }
                let dw = d + slots.weightIH.offset
                for g in 0..<GH { for v in 0..<V { dw[g * V + v] += dwt[v * GH + g] } }
                continue
            }
            // d W_ihᵀ (I, GH) = inputᵀ (I, N) · dGI (N, GH), then added to d W_ih (GH, I).
            sgemm(transA: true, m: I, n: GH, k: N, a: l.input.p, lda: I, b: dGI, ldb: GH,
                  c: dWeightT.p, ldc: GH)
            recur_add_transposed(Int64(I), Int64(GH), dWeightT.p, d + slots.weightIH.offset)
            // d input (N, I) = dGI (N, GH) · W_ih (GH, I): the layer below's output gradient.
            sgemm(m: N, n: I, k: GH, a: dGI, lda: GH, b: wih, ldb: I, c: dInput.p, ldc: I)
            if k > 0 {
                dOut.p.update(from: dInput.p, count: N * I)
            } else if let emb = layout.embedding {
                let E = config.embeddingSize, dEmb = d + emb.offset
                for r in 0..<N { recur_vadd(Int64(E), dInput.p + r * E, dEmb + Int(tokens[r]) * E) }
            }
        }
    }
}
