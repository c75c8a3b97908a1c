import CRecurKernels
import CBLAS
import CDNNL
#if canImport(Glibc)
import Glibc
#endif

/// The matrix-multiply library behind every GEMM in recur, chosen once per process.
///
/// Measured on this project's 2-core machines (shared/peers/README.md, docs/PERFORMANCE.md),
/// oneDNN's `dnnl_sgemm` is the fastest for every shape recur uses, but it generates its kernels
/// at run time and so needs writable+executable memory. Where that is forbidden (systemd's
/// `MemoryDenyWriteExecute=yes`), recur falls back to OpenBLAS. `RECUR_BLAS=dnnl|openblas`
/// overrides the choice; `RECUR_THREADS=N` sets the thread count (default: all cores).
public enum GemmBackend: String, Sendable, CaseIterable {
    case dnnl
    case openblas

    /// The backend in use, picked on first use from the environment and the process's limits.
    public static let current: GemmBackend = {
        let env = getenv("RECUR_BLAS").map { String(cString: $0) }
        let backend: GemmBackend
        if let env, let chosen = GemmBackend(rawValue: env) {
            backend = chosen == .dnnl && !writableExecutableMemoryAllowed() ? .openblas : chosen
        } else {
            backend = writableExecutableMemoryAllowed() ? .dnnl : .openblas
        }
        let threads = getenv("RECUR_THREADS").flatMap { Int(String(cString: $0)) }
            ?? max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        configureThreads(backend, threads: threads)
        return backend
    }()

    /// The threads GEMMs use.
    public nonisolated(unsafe) static private(set) var threads = 1

    private static func configureThreads(_ backend: GemmBackend, threads n: Int) {
        threads = n
        openblas_set_num_threads(Int32(n))
        // oneDNN runs on one OpenMP thread per call; `sgemm` splits a large product over the
        // inference pool's threads itself. OpenMP's own threads would spin at every call's end
        // (GOMP's default wait policy) and take a core from the pool's per-step products that
        // training interleaves with these calls: measured 12% of a training step.
        omp_set_num_threads(1)
    }

    /// Whether an anonymous mapping may be writable and executable at once (a JIT's need).
    static func writableExecutableMemoryAllowed() -> Bool {
        let size = 4096
        let p = mmap(nil, size, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        if p == MAP_FAILED || p == nil { return false }
        munmap(p, size)
        return true
    }
}

/// Row-major single-precision GEMM: C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C.
/// `transA`/`transB` say whether A is stored (K, M) and B is stored (N, K).
@inline(__always)
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    switch GemmBackend.current {
    case .dnnl:
        // Large products: C split over the inference pool (when free) along its longer side, one
        // single-threaded oneDNN call per thread on its rows or columns.
        guard max(m, n) >= 2 && m * n * k >= 1 << 21 else {
            dnnlSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        InferencePool.shared.withPool { pool in
            guard let pool else {
                dnnlSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
                return
            }
            InferencePool.run(pool) { index, count in
                omp_set_num_threads(1)  // a pool worker's own OpenMP setting starts at every core
                if m >= n {
                    let m0 = m * index / count, m1 = m * (index + 1) / count
                    guard m1 > m0 else { return }
                    dnnlSgemm(transA, transB, m1 - m0, n, k, alpha, transA ? a + m0 : a + m0 * lda, lda, b, ldb, beta,
                              c + m0 * ldc, ldc)
                } else {
                    let n0 = n * index / count, n1 = n * (index + 1) / count
                    guard n1 > n0 else { return }
                    dnnlSgemm(transA, transB, m, n1 - n0, k, alpha, a, lda, transB ? b + n0 * ldb : b + n0, ldb, beta,
                              c + n0, ldc)
                }
            }
        }
    case .openblas:
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

@inline(__always)
private func dnnlSgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                       _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                       _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    let status = dnnl_sgemm(transA ? 84 : 78, transB ? 84 : 78, Int64(m), Int64(n), Int64(k),
                            alpha, a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc))
    precondition(status == dnnl_success, "dnnl_sgemm failed with status \(status.rawValue) for M=\(m) N=\(n) K=\(k)")
}
