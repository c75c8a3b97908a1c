#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

// The logging backend is chosen in `Recurd.runMain()`, once the command line is parsed.
//
// The daemon runs as a detached task at medium priority, not on the async top level: that runs
// at the user-initiated priority, for which Linux's libdispatch lowers its worker threads' nice
// value to -4. An unprivileged service may not (recurd.service has no CAP_SYS_NICE), and each
// such worker then logs "Failed to set thread priority for worker thread ... errno=13" to
// syslog; every thread of recurd runs at nice 0 either way.
nonisolated(unsafe) var status: Int32 = 0
let finished = DispatchSemaphore(value: 0)
Task.detached(priority: .medium) {
    status = await Recurd.runMain()
    finished.signal()
}
finished.wait()
exit(status)
