import Foundation
import NIOPosix
@testable import RecurServer
import RecurTestSupport

/// The executor of the async work synchronous tests start (servers, `blocking`): one NIO event
/// loop, not the global cooperative pool. With the test's thread blocked in a wait and nothing
/// else enqueueing, libdispatch's pool on Linux sometimes starts no worker for a new task (seen
/// 1 run in 4 of these suites under load: the task never ran, no pool thread existed), and the
/// test waited forever; an event loop wakes for every job it is given.
let harnessExecutor = EventLoopTaskExecutor(MultiThreadedEventLoopGroup.singleton.next())

/// Runs async work from a synchronous test and waits for it. Tests stay synchronous so that
/// their blocking socket calls never occupy the cooperative threads the server runs on.
func blocking<T: Sendable>(timeout: Double = 60, _ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task(executorPreference: harnessExecutor) {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    guard done.wait(timeout: .now() + timeout) == .success else {
        throw TestFailure("async work did not finish within \(timeout) s")
    }
    return try box.result!.get()
}

/// Carries a result from a task to the thread waiting for it (the semaphore orders the accesses).
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}

/// The process's resident set size in bytes (Linux: from /proc/self/statm).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A fresh directory with a short path (Unix socket paths are limited to 103 bytes).
func makeShortTemporaryDirectory() throws -> URL {
    let url = URL(fileURLWithPath: "/tmp/rs-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
