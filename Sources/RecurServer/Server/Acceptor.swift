import CRecurHandover
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Accepts connections on a listening Unix socket from its own thread and hands over the raw
/// descriptors (the server keeps each descriptor's number, which a restart puts in the store).
/// `stop()` ends the stream; the listening socket itself stays open for its owner.
final class Acceptor: Sendable {
    let listening: Int32
    private let stopped = Locked(false)

    init(listening: Int32) {
        self.listening = listening
        // The listening socket is polled; accept must never block the thread past a stop.
        let flags = fcntl(listening, F_GETFL)
        if flags >= 0 { _ = fcntl(listening, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Accepted descriptors (close-on-exec), until `stop()`.
    func connections() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        let thread = Thread { [self] in
            while !stopped.withLock({ $0 }) {
                var pfd = pollfd(fd: listening, events: Int16(POLLIN), revents: 0)
                let ready = poll(&pfd, 1, 100)
                guard ready > 0 else { continue }
                let fd = recur_accept_cloexec(listening)
                if fd >= 0 {
                    continuation.yield(fd)
                } else if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                    usleep(20_000)  // out of descriptors or memory: let connections close first
                }
            }
            continuation.finish()
        }
        thread.name = "recurd-accept"
        thread.start()
        return stream
    }

    /// Stops accepting; connections already accepted are still delivered.
    func stop() { stopped.withLock { $0 = true } }
}
