#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if os(Linux)
import Synchronization

/// The signal that asked the run to stop (0 = none). A lock-free atomic is safe to store from
/// a signal handler.
private let receivedSignal = Atomic<Int32>(0)
private func storeSignal(_ signal: Int32) { receivedSignal.store(signal, ordering: .relaxed) }
private func loadSignal() -> Int32 { receivedSignal.load(ordering: .relaxed) }
#else
// Darwin's Atomic needs macOS 15; a word-sized global is what C would use here.
nonisolated(unsafe) private var receivedSignal: Int32 = 0
private func storeSignal(_ signal: Int32) { receivedSignal = signal }
private func loadSignal() -> Int32 { receivedSignal }
#endif

/// SIGINT and SIGTERM as a polite request: training stops after the current chunk, saves the
/// model and a checkpoint, and exits with 128 + the signal number (130 for Ctrl-C). The
/// handler resets itself, so a second Ctrl-C ends the process at once, without saving.
enum StopSignal {
    static func install() {
        for signal in [SIGINT, SIGTERM] {
            var action = sigaction()
            #if os(Linux)
            action.__sigaction_handler.sa_handler = { storeSignal($0) }
            #else
            action.__sigaction_u.__sa_handler = { storeSignal($0) }
            #endif
            action.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
    }

    /// The signal received since `install()`, if any.
    static var received: Int32? {
        let signal = loadSignal()
        return signal == 0 ? nil : signal
    }

    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}
