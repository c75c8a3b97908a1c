import CRecurKernels

extension Network {
    /// Runs the chunk forward from the state set by `setInitialState`, returning the summed
    /// cross-entropy (nats) over all N rows. `training` enables dropout (drawn from `rng`).
    @discardableResult
    public func forward(parameters w: UnsafePointer<Float>, training: Bool,
                        rng: inout SeededGenerator, activeSteps: Int? = nil) -> Double {
        let T = activeSteps ?? steps, B = batch, N = T * B, H = config.hiddenSize, V = config.vocabularySize
        let GH = config.cell.gateCount * H
        precondition(T >= 1 && T <= steps, "active steps \(T) outside 1...\(steps)")
        lastSteps = T

        // Layer 0's input: embedding rows, or (one-hot) nothing: the gate rows are columns of W_ih0.
        if let emb = layout.embedding {
            let E = config.embeddingSize, input = layers[0].input.p
            for r in 0..<N {
                (input + r * E).update(from: w + emb.offset + Int(tokens[r]) * E, count: E)
            }
        }

        for k in 0..<config.layers {
            let l = layers[k], slots = layout.layers[k], I = config.inputSize(layer: k)
            let wih = w + slots.weightIH.offset, whh = w + slots.weightHH.offset
            let bih = w + slots.biasIH.offset, bhh = w + slots.biasHH.offset
            let gates = l.gates.p
            // W_hhᵀ (H, GH), packed for the per-step products: B rows are too few for a BLAS to
            // reach its speed (and oneDNN's OpenMP threads spin at every call's barrier), while
            // recur_packed_gemm on the inference pool runs them at the kernel's full rate.
            recur_pack_weights_of_rows(Int32(RECUR_WEIGHTS_F32), Int64(H), Int64(GH), whh, Int64(H), l.packedHHT.p, nil)

            // gates = bias (both biases, except GRU whose hidden bias stays inside r ⊙ (·)).
            let kernels = CellKernels(config)
            for r in 0..<N {
                let row = gates + r * GH
                row.update(from: bih, count: GH)
                if !kernels.separateRecurrentPart { recur_vadd(Int64(GH), bhh, row) }
            }
            if k == 0 && !config.usesEmbedding {
                // One-hot input: W_ih0 · onehot(x) is column x of W_ih0, a row of its transpose.
                let wt = transposedIH.p
                for g in 0..<GH { for v in 0..<V { wt[v * GH + g] = wih[g * V + v] } }
                for r in 0..<N { recur_vadd(Int64(GH), wt + Int(tokens[r]) * GH, gates + r * GH) }
            } else {
                // gates (N, GH) += input (N, I) · W_ihᵀ (I, GH): the whole chunk in one GEMM.
                sgemm(transB: true, m: N, n: GH, k: I, a: l.input.p, lda: I, b: wih, ldb: I,
                      beta: 1, c: gates, ldc: GH)
            }

            InferencePool.shared.withPool { pool in
                for t in 0..<T {
                    let hPrev = l.hs.p + t * B * H, hNext = l.hs.p + (t + 1) * B * H
                    let g = gates + t * B * GH, gh = ghScratch.p
                    // The recurrent product, into the gates or (GRU) apart, on b_hh.
                    if kernels.separateRecurrentPart {
                        for b in 0..<B { (gh + b * GH).update(from: bhh, count: GH) }
                        recurrentProduct(pool, B, GH, H, hPrev, l.packedHHT.p, into: gh, accumulate: true)
                    } else {
                        recurrentProduct(pool, B, GH, H, hPrev, l.packedHHT.p, into: g, accumulate: true)
                    }
                    kernels.forward(B: B, H: H, gates: g, gh: gh, hPrev: hPrev, cPrev: l.cs.p + t * B * H, hNext: hNext,
                                    cNext: l.cs.p + (t + 1) * B * H, tanhC: l.tanhC.p + t * B * H, ghn: l.ghn.p + t * B * H)
                }
            }

            // Output (N, H) → dropout → next layer's input or the head's input.
            let out = l.hs.p + B * H
            let dest = k + 1 < config.layers ? layers[k + 1].input.p : top.p
            if training && dropout > 0 {
                let keep = 1 - dropout, scale = 1 / keep, mask = l.mask.p
                for i in 0..<(N * H) {
                    mask[i] = rng.nextFloat() < keep ? scale : 0
                    dest[i] = out[i] * mask[i]
                }
            } else {
                dest.update(from: out, count: N * H)
            }
        }

        // logits (N, V) = top (N, H) · W_headᵀ (H, V) + b_head.
        let hw = w + layout.headWeight.offset, hb = w + layout.headBias.offset
        for r in 0..<N { (logits.p + r * V).update(from: hb, count: V) }
        sgemm(transB: true, m: N, n: V, k: H, a: top.p, lda: H, b: hw, ldb: H, beta: 1,
              c: logits.p, ldc: V)
        return recur_softmax_xent(Int64(N), Int64(V), logits.p, targets, nil, 0)
    }

    /// C (B, N) (+)= A (B, K) · W, W packed fp32 (K, N): split by columns over `pool` unless the
    /// product is too small to be worth waking it.
    @inline(__always)
    func recurrentProduct(_ pool: OpaquePointer?, _ B: Int, _ N: Int, _ K: Int, _ a: UnsafePointer<Float>,
                          _ packed: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let f32 = Int32(RECUR_WEIGHTS_F32)
        if let pool, B * N * K >= Stepper.parallelThreshold {
            recur_packed_gemm_parallel(pool, f32, Int64(B), Int64(N), Int64(K), a, Int64(K), packed, nil,
                                       0, nil, 0, nil, nil, c, Int64(N), accumulate ? 1 : 0)
        } else {
            recur_packed_gemm(f32, Int64(B), Int64(N), Int64(K), a, Int64(K), packed, nil, c, Int64(N), accumulate ? 1 : 0)
        }
    }
}
