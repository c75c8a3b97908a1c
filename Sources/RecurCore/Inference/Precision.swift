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

    /// The kernel format constant of `recur_qgemm`.
    var weightFormat: Int32 {
        switch self {
        case .fp32: return Int32(RECUR_WEIGHTS_F32)
        case .bf16: return Int32(RECUR_WEIGHTS_BF16)
        case .int8: return Int32(RECUR_WEIGHTS_I8)
        }
    }

    /// The instruction-set path the bf16 and int8 products take on this CPU ("avx2" or "scalar").
    public static var kernelPath: String {
        recur_qgemm_path() == Int32(RECUR_QGEMM_AVX2) ? "avx2" : "scalar"
    }
}

/// A weight matrix stored transposed (K, N) for the row-batched products, in one `Precision`'s
/// format: fp32 as it is, bf16 rounded, or int8 with a scale per column (output unit).
final class WeightMatrix: @unchecked Sendable {
    let precision: Precision
    let rows: Int     // K
    let columns: Int  // N
    /// The weights in `precision`'s format, row-major (K, N), 64-byte aligned.
    let storage: UnsafeMutableRawPointer
    /// int8: the scale of each column; empty otherwise.
    let scales: FloatBuffer

    /// Converts `wT` (K, N) fp32 to `precision`.
    init(_ wT: FloatBuffer, rows K: Int, columns N: Int, precision: Precision) {
        precondition(wT.count == K * N, "matrix of \(wT.count) floats is not \(K)×\(N)")
        self.precision = precision
        rows = K
        columns = N
        let size = precision == .fp32 ? 4 : precision == .bf16 ? 2 : 1
        storage = .allocate(byteCount: max(K * N, 1) * size, alignment: 64)
        scales = FloatBuffer(precision == .int8 ? N : 0)
        switch precision {
        case .fp32:
            storage.copyMemory(from: wT.p, byteCount: K * N * 4)
        case .bf16:
            recur_bf16_from_f32_n(Int64(K * N), wT.p, storage.assumingMemoryBound(to: UInt16.self))
        case .int8:
            recur_i8_quantize_columns(Int64(K), Int64(N), wT.p, storage.assumingMemoryBound(to: Int8.self), scales.p)
        }
    }

    deinit { storage.deallocate() }

    /// The fp32 weights for the fp32 kernels (fp32 only).
    var floats: UnsafePointer<Float> {
        precondition(precision == .fp32, "a \(precision) matrix has no fp32 weights")
        return UnsafePointer(storage.assumingMemoryBound(to: Float.self))
    }

    /// The scales for the kernels (nil except int8).
    var scalePointer: UnsafePointer<Float>? { precision == .int8 ? UnsafePointer(scales.p) : nil }

    /// The weight values as fp32 (dequantized), for tests and inspection.
    var values: [Float] {
        (0..<(rows * columns)).map { i in
            switch precision {
            case .fp32: return storage.assumingMemoryBound(to: Float.self)[i]
            case .bf16: return recur_f32_from_bf16(storage.assumingMemoryBound(to: UInt16.self)[i])
            case .int8: return Float(storage.assumingMemoryBound(to: Int8.self)[i]) * scales[i % columns]
            }
        }
    }
}
