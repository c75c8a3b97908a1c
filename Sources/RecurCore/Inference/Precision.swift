import CRecurKernels

/// The number format of the weights an inference `Stepper` multiplies by, chosen when a model is
/// loaded (`--precision`); model files stay fp32 on disk. Activations, the recurrent state, the
/// cells' pointwise math and every accumulation stay fp32 whichever is chosen.
///
/// - `fp32`: the model's weights as trained (the default).
/// - `bf16`: the recurrent (W_hh) and inner input (W_ih of layers above the first) weights
///   rounded to bfloat16 (to nearest, ties to even): half the bytes, 8 significant bits.
/// - `int8`: the same matrices as int8 with one fp32 scale per output unit (max |w| / 127),
///   multiplied as fp32 after an exact widening ("weight-only" quantization).
///
/// Layer 0's input product is a per-token table lookup at inference (no multiply) and the
/// output projection W_hy is 2% of an LSTM 2×256's weights but feeds the logits directly, so
/// both stay fp32 (docs/PERFORMANCE.md, "Reduced precision").
public enum Precision: String, Sendable, CaseIterable, CustomStringConvertible {
    case fp32
    case bf16
    case int8

    public var description: String { rawValue }

    /// Whether results differ from the model's fp32 numbers (stated once by the tools that use it).
    public var isApproximate: Bool { self != .fp32 }

    /// The one-line warning `recur eval`, `recur sample` and `recurd` print for an approximate
    /// precision, with the cost measured on the sample model.
    public var warning: String? {
        switch self {
        case .fp32: return nil
        case .bf16: return "precision bf16 is approximate: weights rounded to bfloat16, so results differ from fp32's (on the sample LSTM's validation text by under 0.001 nats/char; docs/PERFORMANCE.md)"
        case .int8: return "precision int8 is approximate: weights quantized to int8 per output unit, so results differ from fp32's (on the sample LSTM's validation text by under 0.001 nats/char; docs/PERFORMANCE.md)"
        }
    }

    /// The kernel format constant of `recur_packed_gemm`.
    var weightFormat: Int32 {
        switch self {
        case .fp32: return Int32(RECUR_WEIGHTS_F32)
        case .bf16: return Int32(RECUR_WEIGHTS_BF16)
        case .int8: return Int32(RECUR_WEIGHTS_I8)
        }
    }

    /// The instruction-set path this precision's products take on this CPU ("avx512", "avx2"
    /// or "scalar"; bf16 and int8 have no AVX-512 path).
    public var kernelPath: String {
        switch recur_packed_gemm_path(weightFormat) {
        case Int32(RECUR_GEMM_AVX512): return "avx512"
        case Int32(RECUR_GEMM_AVX2): return "avx2"
        default: return "scalar"
        }
    }
}

/// A weight matrix for the inference products: Wᵀ (K, N) packed by `recur_pack_weights` into
/// panels of 16 columns in one `Precision`'s format (fp32 as it is, bf16 rounded, or int8 with a
/// scale per column, i.e. per output unit).
final class WeightMatrix: @unchecked Sendable {
    let precision: Precision
    let rows: Int     // K
    let columns: Int  // N
    /// The packed weights, 64-byte aligned.
    let storage: UnsafeMutableRawPointer
    /// int8: the scale of each column (padded to whole panels); empty otherwise.
    let scales: FloatBuffer

    /// Packs Wᵀ (K, N) in `precision`'s format from W (N, K) fp32 as a layer stores it, one row
    /// per output unit.
    init(rowsOf w: UnsafePointer<Float>?, outputs N: Int, inputs K: Int, precision: Precision) {
        self.precision = precision
        rows = K
        columns = N
        let format = precision.weightFormat
        storage = .allocate(byteCount: max(Int(recur_packed_bytes(format, Int64(K), Int64(N))), 1), alignment: 64)
        scales = FloatBuffer(precision == .int8 ? Int(recur_packed_scales(Int64(N))) : 0)
        if let w, K > 0 && N > 0 {
            recur_pack_weights_of_rows(format, Int64(K), Int64(N), w, Int64(K), storage, precision == .int8 ? scales.p : nil)
        }
    }

    deinit { storage.deallocate() }

    /// The scales for the kernels (nil except int8).
    var scalePointer: UnsafePointer<Float>? { precision == .int8 ? UnsafePointer(scales.p) : nil }

    /// The weight values as fp32 (dequantized), row-major (K, N), for tests and inspection.
    var values: [Float] {
        (0..<(rows * columns)).map { i in
            let k = i / columns, n = i % columns
            let w = recur_packed_weight(precision.weightFormat, Int64(rows), storage, Int64(k), Int64(n))
            return precision == .int8 ? w * scales[n] : w
        }
    }
}
