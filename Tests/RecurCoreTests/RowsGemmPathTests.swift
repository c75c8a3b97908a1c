import CRecurKernels
import RecurTestSupport
import XCTest

/// `recur_rows_gemm` has one path per instruction set (scalar, AVX2 with FMA, AVX-512) chosen
/// from the CPU at load time; each must give the bits of the scalar reference (one fused
/// multiply-add per k, k ascending), so a stream's numbers do not depend on the machine's CPU
/// kind any more than on its batch.
final class RowsGemmPathTests: XCTestCase {
    private static let paths: [(Int32, String)] = [
        (Int32(RECUR_ROWS_GEMM_SCALAR), "scalar"), (Int32(RECUR_ROWS_GEMM_AVX2), "avx2"), (Int32(RECUR_ROWS_GEMM_AVX512), "avx512"),
    ]

    /// C (+)= A·WT computed in Swift in the reference order.
    private func reference(_ B: Int, _ N: Int, _ K: Int, _ a: [Float], _ wT: [Float], _ c: [Float], accumulate: Bool) -> [Float] {
        var out = c
        for b in 0..<B {
            for n in 0..<N {
                var s: Float = accumulate ? c[b * N + n] : 0
                for k in 0..<K { s.addProduct(a[b * K + k], wT[k * N + n]) }
                out[b * N + n] = s
            }
        }
        return out
    }

    func test_everyPathThisCPUHas_equalsTheReferenceBitForBit() throws {
        var rng = TestRNG(seed: 12)
        let random = { (count: Int) -> [Float] in (0..<count).map { _ in Float(rng.below(20_001)) / 10_000 - 1 } }
        var ran: [String] = []
        // Shapes around every block edge: rows 1...9 (blocks of 4), columns around 8, 16, 24, 64, 128.
        let shapes = [(1, 1, 1), (1, 7, 3), (2, 8, 5), (3, 9, 17), (4, 16, 8), (5, 23, 31), (6, 24, 64), (7, 25, 2),
                      (8, 63, 9), (9, 64, 40), (4, 65, 33), (3, 127, 12), (5, 128, 7), (2, 129, 65), (9, 260, 256)]
        for (path, name) in Self.paths {
            var supported = true
            for (B, N, K) in shapes {
                let a = random(B * K), wT = random(K * N), c0 = random(B * N)
                for accumulate in [false, true] {
                    var c = c0
                    let status = c.withUnsafeMutableBufferPointer { cp in
                        recur_rows_gemm_on(path, Int64(B), Int64(N), Int64(K), a, Int64(K), wT, Int64(N), cp.baseAddress!, Int64(N), accumulate ? 1 : 0)
                    }
                    if status != 0 { supported = false; break }
                    let expected = reference(B, N, K, a, wT, c0, accumulate: accumulate)
                    XCTAssertEqual(c.map(\.bitPattern), expected.map(\.bitPattern), "\(name) B=\(B) N=\(N) K=\(K) accumulate=\(accumulate)")
                }
                if !supported { break }
            }
            if supported { ran.append(name) }
        }
        XCTAssertTrue(ran.contains("scalar"))
        XCTAssertTrue(ran.contains(Self.paths.first { $0.0 == recur_rows_gemm_path() }!.1), "the chosen path was checked: \(ran)")
        print("rows_gemm paths checked on this CPU: \(ran.joined(separator: ", ")); chosen: \(Self.paths.first { $0.0 == recur_rows_gemm_path() }!.1)")
    }
}
