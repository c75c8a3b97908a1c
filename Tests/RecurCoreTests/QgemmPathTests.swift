import CRecurKernels
import RecurTestSupport
import XCTest
@testable import RecurCore

/// `recur_qgemm` (the bf16 and int8 products of `--precision`) has a scalar path and an AVX2+FMA
/// path chosen at load time; both follow one summation order (fp32 accumulator, k ascending, one
/// fused multiply-add per k; int8's per-column scale applied once at the end), so every path
/// this CPU has must give the bits of a Swift reference written in that order, and the
/// column-split parallel call must give the bits of the single-threaded one.
final class QgemmPathTests: XCTestCase {
    private static let paths: [(Int32, String)] = [(Int32(RECUR_QGEMM_SCALAR), "scalar"), (Int32(RECUR_QGEMM_AVX2), "avx2")]
    private static let formats: [(Int32, String)] = [(Int32(RECUR_WEIGHTS_BF16), "bf16"), (Int32(RECUR_WEIGHTS_I8), "int8")]
    // Shapes around every block edge: rows 1...9 (blocks of 4), columns around 8, 24, 32, 96.
    private static let shapes = [(1, 1, 1), (1, 7, 3), (2, 8, 5), (3, 9, 17), (4, 16, 8), (5, 23, 31), (6, 24, 64),
                                 (7, 25, 2), (1, 31, 9), (1, 32, 40), (1, 95, 12), (1, 96, 7), (2, 97, 65), (8, 130, 33),
                                 (9, 260, 256), (1, 1024, 256)]

    /// Weights in a format: bf16 bits or int8 values, and the fp32 value the kernels multiply by.
    private struct Weights {
        var bytes: [UInt8]
        var scale: [Float]
        var value: (Int) -> Float
    }

    private func weights(_ format: Int32, _ wT: [Float], K: Int, N: Int) -> Weights {
        if format == Int32(RECUR_WEIGHTS_BF16) {
            var bits = [UInt16](repeating: 0, count: K * N)
            recur_bf16_from_f32_n(Int64(K * N), wT, &bits)
            let bytes = bits.withUnsafeBytes { Array($0) }
            return Weights(bytes: bytes, scale: [], value: { Float(bitPattern: UInt32(bits[$0]) << 16) })
        }
        var q = [Int8](repeating: 0, count: K * N), scale = [Float](repeating: 0, count: N)
        recur_i8_quantize_columns(Int64(K), Int64(N), wT, &q, &scale)
        return Weights(bytes: q.map { UInt8(bitPattern: $0) }, scale: scale, value: { Float(q[$0]) })
    }

    /// C (+)= A·W in the documented order.
    private func reference(_ format: Int32, _ B: Int, _ N: Int, _ K: Int, _ a: [Float], _ w: Weights,
                           _ c: [Float], accumulate: Bool) -> [Float] {
        var out = c
        for b in 0..<B {
            for n in 0..<N {
                if format == Int32(RECUR_WEIGHTS_BF16) {
                    var s: Float = accumulate ? c[b * N + n] : 0
                    for k in 0..<K { s.addProduct(a[b * K + k], w.value(k * N + n)) }
                    out[b * N + n] = s
                } else {
                    var s: Float = 0
                    for k in 0..<K { s.addProduct(a[b * K + k], w.value(k * N + n)) }
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

    func test_everyPathThisCPUHas_equalsTheReferenceBitForBit() throws {
        var rng = TestRNG(seed: 12)
        let random = { (count: Int) -> [Float] in (0..<count).map { _ in Float(rng.below(20_001)) / 10_000 - 1 } }
        var ran: Set<String> = []
        for (format, formatName) in Self.formats {
            for (path, name) in Self.paths {
                var supported = true
                for (B, N, K) in Self.shapes {
                    let a = random(B * K), wT = random(K * N), c0 = random(B * N)
                    let w = weights(format, wT, K: K, N: N)
                    for accumulate in [false, true] {
                        var c = c0
                        let status = c.withUnsafeMutableBufferPointer { cp in
                            w.bytes.withUnsafeBytes { wp in
                                recur_qgemm_on(path, format, Int64(B), Int64(N), Int64(K), a, Int64(K), wp.baseAddress!, Int64(N),
                                               w.scale.isEmpty ? nil : w.scale, cp.baseAddress!, Int64(N), accumulate ? 1 : 0)
                            }
                        }
                        if status != 0 { supported = false; break }
                        let expected = reference(format, B, N, K, a, w, c0, accumulate: accumulate)
                        XCTAssertEqual(c.map(\.bitPattern), expected.map(\.bitPattern),
                                       "\(formatName) \(name) B=\(B) N=\(N) K=\(K) accumulate=\(accumulate)")
                    }
                    if !supported { break }
                }
                if supported { ran.insert(name) }
            }
        }
        let chosen = Self.paths.first { $0.0 == recur_qgemm_path() }!.1
        XCTAssertTrue(ran.contains("scalar"))
        XCTAssertTrue(ran.contains(chosen), "the chosen path was checked: \(ran)")
        XCTAssertEqual(Precision.kernelPath, chosen)
        print("qgemm paths checked on this CPU: \(ran.sorted().joined(separator: ", ")); chosen: \(chosen)")
    }

    func test_parallelProduct_equalsSingleThreaded_bitForBit() throws {
        var rng = TestRNG(seed: 5)
        let random = { (count: Int) -> [Float] in (0..<count).map { _ in Float(rng.below(20_001)) / 10_000 - 1 } }
        let pool = InferencePool(threads: 3)
        for (format, name) in Self.formats {
            for (B, N, K) in [(1, 1024, 256), (3, 200, 64), (5, 47, 19)] {
                let a = random(B * K), a2 = random(B * K), c0 = random(B * N)
                let w = weights(format, random(K * N), K: K, N: N), w2 = weights(format, random(K * N), K: K, N: N)
                var serial = c0, parallel = c0
                w.bytes.withUnsafeBytes { wp in
                    w2.bytes.withUnsafeBytes { w2p in
                        let s = w.scale.isEmpty ? nil : w.scale, s2 = w2.scale.isEmpty ? nil : w2.scale
                        recur_qgemm(format, Int64(B), Int64(N), Int64(K), a, Int64(K), wp.baseAddress!, Int64(N), s, &serial, Int64(N), 1)
                        recur_qgemm(format, Int64(B), Int64(N), Int64(K), a2, Int64(K), w2p.baseAddress!, Int64(N), s2, &serial, Int64(N), 1)
                        pool.withPool { p in
                            XCTAssertNotNil(p)
                            recur_qgemm_parallel(p, format, Int64(B), Int64(N), Int64(K), a, Int64(K), wp.baseAddress!, Int64(N), s,
                                                 Int64(K), a2, Int64(K), w2p.baseAddress!, Int64(N), s2, &parallel, Int64(N), 1)
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
        var q = [Int8](repeating: 0, count: 9), scale = [Float](repeating: -1, count: 3)
        recur_i8_quantize_columns(3, 3, wT, &q, &scale)
        XCTAssertEqual(scale[0], 2.54 / 127)
        XCTAssertEqual(scale[1], 1.27 / 127)
        XCTAssertEqual(scale[2], 0, "an all-zero column has scale 0 and zeros")
        XCTAssertEqual(q, [127, -127, 0, -50, 60, 0, 0, 0, 0])
        for i in 0..<9 where scale[i % 3] > 0 {
            XCTAssertLessThanOrEqual(abs(Float(q[i]) * scale[i % 3] - wT[i]), scale[i % 3] / 2 * 1.0001, "element \(i) within half a step")
        }
    }
}
