import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Whether the graceful stop under way is a restart (a next process will take the connections
/// over) or a stop (nothing follows: each connection is closed cleanly). Set once, by
/// `RestartSignalListener`, before the graceful shutdown begins; read by the socket server
/// when a connection has answered its last request.
public final class RestartRequest: Sendable {
    private let requested = Locked(false)

    /// Not requested.
    public init() {}

    /// The stop is a restart.
    func set() { requested.withLock { $0 = true } }

    /// Whether the stop is a restart.
    public var isSet: Bool { requested.withLock { $0 } }
}

/// Waits for the signal by which a service manager stops the daemon for a restart (systemd's
/// `RestartKillSignal=SIGUSR2`): records it in `request` and ends, which shuts the daemon's
/// group down gracefully, as SIGTERM does. The signal is trapped from `init` on by a plain
/// handler writing to a pipe, so one that arrives before the group runs is neither lost nor
/// fatal (a dispatch source registers asynchronously, and the signal's default action is to
/// terminate).
struct RestartSignalListener: Service {
    let signal: Int32
    let request: RestartRequest
    let logger: Logger
    private let pipe: SignalPipe

    init(signal: Int32, request: RestartRequest, logger: Logger) {
        self.signal = signal
        self.request = request
        self.logger = logger
        pipe = SignalPipe.trapping(signal)
    }

    func run() async throws {
        let signal = self.signal
        let (raised, continuation) = AsyncStream<Bool>.makeStream()
        let pipe = self.pipe
        let reader = Thread {
            continuation.yield(pipe.next())
            continuation.finish()
        }
        reader.name = "recurd-restart-signal"
        reader.start()
        await withGracefulShutdownHandler {
            for await isSignal in raised where isSignal {
                request.set()
                logger.notice("restarting (signal \(signal)): the open connections are handed over to the next process")
            }
        } onGracefulShutdown: {
            pipe.wake()
        }
    }
}

/// The self-pipe a signal handler writes a byte into (write(2) is async-signal-safe), read by a
/// thread. One per process: a second `trapping` returns the same pipe.
final class SignalPipe: Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    private init(readEnd: Int32, writeEnd: Int32) {
        self.readEnd = readEnd
        self.writeEnd = writeEnd
    }

    private static let shared: SignalPipe = {
        var ends: [Int32] = [-1, -1]
        guard Glibc.pipe(&ends) == 0 else {
            fatalError("cannot create the restart signal's pipe: \(String(cString: strerror(errno)))")
        }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        signalPipeWriteEnd = ends[1]
        return SignalPipe(readEnd: ends[0], writeEnd: ends[1])
    }()

    /// The pipe, with `signal` writing a 1 into it from now on.
    static func trapping(_ signal: Int32) -> SignalPipe {
        let pipe = shared
        Glibc.signal(signal) { _ in
            var byte: UInt8 = 1
            _ = Glibc.write(signalPipeWriteEnd, &byte, 1)
        }
        return pipe
    }

    /// Blocks until the signal (true) or `wake()` (false).
    func next() -> Bool {
        var byte: UInt8 = 0
        while true {
            let n = Glibc.read(readEnd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            return n == 1 && byte == 1
        }
    }

    /// Ends a `next()` with false.
    func wake() {
        var byte: UInt8 = 0
        _ = Glibc.write(writeEnd, &byte, 1)
    }
}

/// The pipe's write end for the signal handler, which can capture nothing. Written once,
/// before any handler is installed.
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1
