import CRecurKernels
#if canImport(Glibc)
import Glibc
#endif

/// The process-wide worker threads that split one inference step's matrix products by columns.
/// One `Stepper` at a time uses them (the daemon's engine thread, or `recur eval`); a step that
/// finds them busy runs on its own thread. Results are identical either way.
final class InferencePool: @unchecked Sendable {
    let pool: OpaquePointer?

    /// Threads: `RECUR_THREADS`, else the online CPUs.
    static let shared = InferencePool(threads: getenv("RECUR_THREADS").flatMap { Int(String(cString: $0)) }
        ?? max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    init(threads: Int) {
        pool = threads > 1 ? recur_pool_create(Int32(threads)) : nil
    }

    /// Runs `body(index, count)` on every thread of `pool` (the caller is index 0) and returns
    /// when all are done.
    static func run(_ pool: OpaquePointer, _ body: (Int, Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var context = body
            withUnsafeMutablePointer(to: &context) { ctx in
                recur_pool_run(pool, { raw, index, count in
                    raw!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(index), Int(count))
                }, ctx)
            }
        }
    }

    /// Runs `body` with the pool if it is free (nil otherwise: go single-threaded).
    func withPool<R>(_ body: (OpaquePointer?) -> R) -> R {
        guard let pool, recur_pool_try_acquire(pool) != 0 else { return body(nil) }
        defer { recur_pool_release(pool) }
        return body(pool)
    }
}
