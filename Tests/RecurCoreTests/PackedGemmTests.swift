import CRecurKernels
import RecurTestSupport
import XCTest
@testable import RecurCore

/// `recur_packed_gemm`, the inference products, has one path per instruction set (scalar, AVX2
/// with FMA, AVX-512 for fp32) chosen from the CPU at load time, for weights packed in fp32, bf16
/// or int8. All follow one summation order (fp32 accumulator, k ascending, one fused multiply-add
/// per k; int8's per-column scale applied once at the end), so every path this CPU has must give
/// the bits of a Swift reference written in that order, on shapes around every block edge, and
/// the column-split parallel call must give the bits of the single-threaded one.
final class PackedGemmTests: XCTestCase {
    private static let paths: [(Int32, String)] = [
        (Int32(RECUR_GEMM_SCALAR), "scalar"), (Int32(RECUR_GEMM_AVX2), "avx2"), (Int32(RECUR_GEMM_AVX512), "avx512"),
    ]
    private static let formats: [(Int32, String)] = [
        (Int32(RECUR_WEIGHTS_F32), "fp32"), (Int32(RECUR_WEIGHTS_BF16), "bf16"), (Int32(RECUR_WEIGHTS_I8), "int8"),
    ]
    // Rows 1...13 (blocks of 6 on AVX2, 4 on AVX-512), columns around a panel (16), a lone row's
    // 6 (AVX2) and 8 (AVX-512) panels, and AVX-512's 4-panel blocks; K from 1 to 256.
    private static let shapes = [(1, 1, 1), (1, 7, 3), (2, 8, 5), (3, 9, 17), (4, 16, 8), (5, 23, 31), (6, 24, 64),
                                 (7, 25, 2), (1, 31, 9), (1, 32, 40), (1, 95, 12), (1, 96, 7), (1, 97, 5), (2, 97, 65),
                                 (8, 130, 33), (12, 64, 3), (13, 65, 11), (1, 128, 6), (1, 129, 4), (5, 144, 9),
                                 (9, 260, 256), (1, 1024, 256), (1, 136, 5), (1, 150, 3), (2, 160, 4)]

    /// W packed in a format, with its scales (int8), and the value a product multiplies by.
    private struct Packed {
        var format: Int32
        var K: Int
        var bytes: [UInt8]
        var scale: [Float]
        func weight(_ k: Int, _ n: Int) -> Float {
            bytes.withUnsafeBytes { recur_packed_weight(format, Int64(K), $0.baseAddress!, Int64(k), Int64(n)) }
        }
    }

    private func pack(_ format: Int32, _ wT: [Float], K: Int, N: Int) -> Packed {
        var bytes = [UInt8](repeating: 0xAB, count: Int(recur_packed_bytes(format, Int64(K), Int64(N))))
        var scale = [Float](repeating: .nan, count: format == Int32(RECUR_WEIGHTS_I8) ? Int(recur_packed_scales(Int64(N))) : 0)
        bytes.withUnsafeMutableBytes { out in
            scale.withUnsafeMutableBufferPointer { s in
                recur_pack_weights(format, Int64(K), Int64(N), wT, Int64(N), out.baseAddress!, s.baseAddress)
            }
        }
        return Packed(format: format, K: K, bytes: bytes, scale: scale)
    }

    /// C (+)= A·W in the documented order.
    private func reference(_ B: Int, _ N: Int, _ K: Int, _ a: [Float], _ w: Packed, _ c: [Float], accumulate: Bool) -> [Float] {
        var out = c
        for b in 0..<B {
            for n in 0..<N {
                if w.format != Int32(RECUR_WEIGHTS_I8) {
                    var s: Float = accumulate ? c[b * N + n] : 0
                    for k in 0..<K { s.addProduct(a[b * K + k], w.weight(k, n)) }
                    out[b * N + n] = s
                } else {
                    var s: Float = 0
                    for k in 0..<K { s.addProduct(a[b * K + k], w.weight(k, n)) }
                    if accumulate {
                        var t = c[b * N + n]
                        t.addProduct(w.scale[n], s)
                        out[b * N + n] = t
                    } else {
                        out[b * N + n] = w.scale[n] * s
                    }
                }
            }
        }
        return out
    }

    func test_packing_keepsEveryWeightInItsFormat() {
        var rng = TestRNG(seed: 3)
        let (K, N) = (5, 37)
        let wT = (0..<(K * N)).map { _ in Float(rng.below(20_001)) / 10_000 - 1 }
        for (format, name) in Self.formats {
            let w = pack(format, wT, K: K, N: N)
            for k in 0..<K {
                for n in 0..<N {
                    let x = wT[k * N + n]
                    switch format {
                    case Int32(RECUR_WEIGHTS_F32): XCTAssertEqual(w.weight(k, n), x, "\(name) (\(k), \(n))")
                    case Int32(RECUR_WEIGHTS_BF16): XCTAssertEqual(w.weight(k, n), recur_f32_from_bf16(recur_bf16_from_f32(x)), "\(name) (\(k), \(n))")
                    default:
                        XCTAssertLessThanOrEqual(abs(w.weight(k, n) * w.scale[n] - x), w.scale[n] / 2 * 1.0001, "\(name) (\(k), \(n))")
                    }
                }
            }
            if format == Int32(RECUR_WEIGHTS_I8) {
                XCTAssertEqual(w.scale.count, 48, "scales for whole panels")
                XCTAssertEqual(Array(w.scale[N...]), [Float](repeating: 0, count: 48 - N), "the padding's scales are 0")
            }
        }
    }

    func test_packingALayersRows_equalsPackingItsTranspose() {
        var rng = TestRNG(seed: 4)
        for (K, N) in [(1, 1), (5, 37), (19, 16), (33, 100)] {
            // W (N, K) with a row stride of K + 2, as a layer would store it inside a larger buffer.
            let ld = K + 2
            let w = (0..<(N * ld)).map { _ in Float(rng.below(20_001)) / 10_000 - 1 }
            var wT = [Float](repeating: 0, count: K * N)
            for n in 0..<N { for k in 0..<K { wT[k * N + n] = w[n * ld + k] } }
            for (format, name) in Self.formats {
                let expected = pack(format, wT, K: K, N: N)
                var bytes = [UInt8](repeating: 0xCD, count: expected.bytes.count)
                var scale = [Float](repeating: .nan, count: expected.scale.count)
                bytes.withUnsafeMutableBytes { out in
                    scale.withUnsafeMutableBufferPointer { s in
                        recur_pack_weights_of_rows(format, Int64(K), Int64(N), w, Int64(ld), out.baseAddress!, s.baseAddress)
                    }
                }
                XCTAssertEqual(bytes, expected.bytes, "\(name) K=\(K) N=\(N)")
                XCTAssertEqual(scale.map(\.bitPattern), expected.scale.map(\.bitPattern), "\(name) K=\(K) N=\(N) scales")
            }
        }
    }

    func test_everyPathThisCPUHas_equalsTheReferenceBitForBit() throws {
        var rng = TestRNG(seed: 12)
        let random = { (count: Int) -> [Float] in (0..<count).map { _ in Float(rng.below(20_001)) / 10_000 - 1 } }
        var checked: [String] = []
        for (format, formatName) in Self.formats {
            for (path, name) in Self.paths {
                var supported = true
                for (B, N, K) in Self.shapes {
                    let a = random(B * K), c0 = random(B * N)
                    let w = pack(format, random(K * N), K: K, N: N)
                    for accumulate in [false, true] {
                        // C's rows are 3 floats longer than N, and the guard values there must survive.
                        let ldc = N + 3, guardValue: Float = -12345.5
                        var c = [Float](repeating: guardValue, count: B * ldc + 3)
                        for b in 0..<B { for n in 0..<N { c[b * ldc + n] = c0[b * N + n] } }
                        let status = c.withUnsafeMutableBufferPointer { cp in
                            w.bytes.withUnsafeBytes { wp in
                                recur_packed_gemm_on(path, format, Int64(B), Int64(N), Int64(K), a, Int64(K), wp.baseAddress!,
                                                     w.scale.isEmpty ? nil : w.scale, cp.baseAddress!, Int64(ldc), accumulate ? 1 : 0)
                            }
                        }
                        if status != 0 { supported = false; break }
                        let expected = reference(B, N, K, a, w, c0, accumulate: accumulate)
                        let got = (0..<(B * N)).map { c[$0 / N * ldc + $0 % N] }
                        XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern),
                                       "\(formatName) \(name) B=\(B) N=\(N) K=\(K) accumulate=\(accumulate)")
                        let outside = c.indices.filter { $0 >= B * ldc || $0 % ldc >= N }.map { c[$0] }
                        XCTAssertEqual(outside, [Float](repeating: guardValue, count: outside.count),
                                       "\(formatName) \(name) B=\(B) N=\(N) K=\(K): nothing written past N")
                    }
                    if !supported { break }
                }
                if supported { checked.append("\(formatName) \(name)") }
            }
            let chosen = Self.paths.first { $0.0 == recur_packed_gemm_path(format) }!.1
            XCTAssertTrue(checked.contains("\(formatName) scalar"))
            XCTAssertTrue(checked.contains("\(formatName) \(chosen)"), "the chosen path was checked: \(checked)")
        }
        XCTAssertEqual(Precision.bf16.kernelPath, Self.paths.first { $0.0 == recur_packed_gemm_path(Int32(RECUR_WEIGHTS_BF16)) }!.1)
        XCTAssertEqual(KernelInfo.fp32Path, Self.paths.first { $0.0 == recur_packed_gemm_path(Int32(RECUR_WEIGHTS_F32)) }!.1)
        print("packed_gemm paths checked on this CPU: \(checked.joined(separator: ", "))")
    }

    func test_parallelProduct_equalsSingleThreaded_bitForBit() throws {
        var rng = TestRNG(seed: 5)
        let random = { (count: Int) -> [Float] in (0..<count).map { _ in Float(rng.below(20_001)) / 10_000 - 1 } }
        let pool = InferencePool(threads: 3)
        for (format, name) in Self.formats {
            for (B, N, K) in [(1, 1024, 256), (3, 200, 64), (5, 47, 19), (7, 65, 30)] {
                let a = random(B * K), a2 = random(B * K), c0 = random(B * N)
                let w = pack(format, random(K * N), K: K, N: N), w2 = pack(format, random(K * N), K: K, N: N)
                var serial = c0, parallel = c0
                w.bytes.withUnsafeBytes { wp in
                    w2.bytes.withUnsafeBytes { w2p in
                        let s = w.scale.isEmpty ? nil : w.scale, s2 = w2.scale.isEmpty ? nil : w2.scale
                        recur_packed_gemm(format, Int64(B), Int64(N), Int64(K), a, Int64(K), wp.baseAddress!, s, &serial, Int64(N), 1)
                        recur_packed_gemm(format, Int64(B), Int64(N), Int64(K), a2, Int64(K), w2p.baseAddress!, s2, &serial, Int64(N), 1)
                        pool.withPool { p in
                            XCTAssertNotNil(p)
                            recur_packed_gemm_parallel(p, format, Int64(B), Int64(N), Int64(K), a, Int64(K), wp.baseAddress!, s,
                                                       Int64(K), a2, Int64(K), w2p.baseAddress!, s2, &parallel, Int64(N), 1)
                        }
                    }
                }
                XCTAssertEqual(parallel.map(\.bitPattern), serial.map(\.bitPattern), "\(name) B=\(B) N=\(N) K=\(K)")
            }
        }
    }

    func test_bf16Conversion_roundsToNearestEven() {
        let cases: [(UInt32, UInt16)] = [
            (0x3F80_0000, 0x3F80),  // 1 exactly
            (0x3F80_8000, 0x3F80),  // halfway, even below: down
            (0x3F81_8000, 0x3F82),  // halfway, odd below: up
            (0x3F80_8001, 0x3F81),  // above halfway: up
            (0x3F80_7FFF, 0x3F80),  // below halfway: down
            (0xBF81_8000, 0xBF82),  // negative: the same, by magnitude
            (0x7F7F_FFFF, 0x7F80),  // the largest float rounds to infinity
            (0x7F80_0000, 0x7F80),  // infinity stays
            (0x0000_0001, 0x0000),  // a tiny subnormal rounds to zero
        ]
        for (input, expected) in cases {
            XCTAssertEqual(recur_bf16_from_f32(Float(bitPattern: input)), expected, String(input, radix: 16))
        }
        let nan = recur_bf16_from_f32(Float(bitPattern: 0x7F80_0001))  // a NaN whose payload is all in the low half
        XCTAssertTrue(recur_f32_from_bf16(nan).isNaN, "a NaN stays a NaN, not infinity")
        XCTAssertEqual(recur_f32_from_bf16(0x4049), Float(bitPattern: 0x4049_0000))
    }

    func test_int8Quantization_perColumnScaleAndRounding() {
        // K = 3, N = 3: column 0 peaks at 2.54, column 1 at -1.27, column 2 is zero.
        let wT: [Float] = [2.54, -1.27, 0,
                           -1.0, 0.6, 0,
                           0.01, 0.0, 0]
        let w = pack(Int32(RECUR_WEIGHTS_I8), wT, K: 3, N: 3)
        XCTAssertEqual(w.scale[0], 2.54 / 127)
        XCTAssertEqual(w.scale[1], 1.27 / 127)
        XCTAssertEqual(w.scale[2], 0, "an all-zero column has scale 0 and zeros")
        let q = (0..<9).map { Int8(w.weight($0 / 3, $0 % 3)) }
        XCTAssertEqual(q, [127, -127, 0, -50, 60, 0, 0, 0, 0])
    }
}
