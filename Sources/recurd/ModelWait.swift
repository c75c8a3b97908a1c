import Dispatch
import Foundation
import Logging
import RecurCore
import RecurServer
import RecurSystemd
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// recurd under systemd whose model cannot be loaded at start. Exiting would only start a
/// restart loop while clients queue on the socket systemd keeps; instead recurd reports the
/// failure (an error in the journal, STATUS=, READY=1 so that `systemctl start` returns), refuses
/// each new connection with one `model_unavailable` error line, and loads the model again when
/// the file changes (once it has stopped changing for a check interval) or on SIGHUP
/// (`systemctl reload`). Connections handed over by a previous process stay in the fd store,
/// unread, until the model loads; then the daemon serves them as after any restart.
struct ModelWait {
    let path: String
    let listening: Int32
    let notifier: SystemdNotifier
    let logger: Logger
    /// How often the model file is looked at (and the watchdog pinged).
    var checkInterval: Duration = .milliseconds(500)

    /// A model that loaded after a wait, and the stop signal (SIGTERM, SIGINT, or the restart
    /// signal SIGUSR2) that arrived
    /// since, if any, which the daemon's service group was not yet there to see.
    struct Loaded {
        let model: Model
        let pendingStop: @Sendable () -> Int32?
    }

    /// Waits for a model that loads; nil when recurd was asked to stop (SIGTERM, SIGINT) or to
    /// restart (SIGUSR2) first: connections handed over by a previous process stay in the fd
    /// store, unread, for the next one.
    /// `firstFailure` is why the model did not load at start.
    func run(firstFailure: String) async -> Loaded? {
        // First, before READY=1: a stop from then on is seen. One between the model loading and
        // the service group trapping signals is raised again once the daemon is ready
        // (`Loaded.pendingStop`).
        let restart = SystemdObserver.restartKillSignal
        let signals = SignalFlags([SIGHUP, SIGTERM, SIGINT, restart])
        var failure = firstFailure
        report(failure)
        let refusal = Refusal(failure)
        let acceptor = RefusingAcceptor(listening: listening, refusal: refusal)
        acceptor.start()
        defer { acceptor.stop() }

        var seen = FileSignature(path)
        var stable = true
        while true {
            try? await Task.sleep(for: checkInterval)
            if notifier.watchdogInterval != nil { notifier.watchdogPing() }
            let raised = signals.take()
            if raised.contains(SIGTERM) || raised.contains(SIGINT) || raised.contains(restart) {
                logger.notice(raised.contains(restart) ? "restarting while waiting for a model" : "stopping while waiting for a model")
                notifier.stopping(status: "stopping (no model was loaded)")
                return nil
            }
            let now = FileSignature(path)
            let changed = now != seen
            seen = now
            // A file being written is tried once it has stopped changing for a check interval.
            if changed { stable = false; continue }
            let retry = raised.contains(SIGHUP) || !stable
            stable = true
            guard retry else { continue }
            if raised.contains(SIGHUP) { logger.notice("reloading the model '\(path)'") }
            do {
                let model = try Model(contentsOf: path)
                logger.notice("the model '\(path)' loads now; serving clients")
                return Loaded(model: model, pendingStop: { signals.take().first { $0 != SIGHUP } })
            } catch {
                failure = "cannot load the model '\(path)': \(error.sentence)"
                report(failure)
                refusal.set(failure)
            }
        }
    }

    /// The failure as an error entry and as the unit's status.
    private func report(_ failure: String) {
        logger.error("\(failure); refusing clients with model_unavailable until a model that loads is installed at '\(path)' (checked every \(checkInterval), or on systemctl reload)")
        notifier.ready(status: "no model: \(failure); clients are refused with model_unavailable until a good model is installed")
    }
}

/// The model file's identity and contents as stat(2) sees them; nil fields when it is missing.
private struct FileSignature: Equatable {
    var device: UInt64 = 0, inode: UInt64 = 0, size: Int64 = -1, seconds: Int = 0, nanoseconds: Int = 0

    init(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        seconds = info.st_mtim.tv_sec
        nanoseconds = info.st_mtim.tv_nsec
    }
}

/// The `model_unavailable` line new connections get, updated with each failed attempt.
private final class Refusal: Sendable {
    private let line: Mutex<[UInt8]>

    init(_ failure: String) { line = Mutex(Self.line(for: failure)) }

    func set(_ failure: String) { line.withLock { $0 = Self.line(for: failure) } }

    var current: [UInt8] { line.withLock { $0 } }

    private static func line(for failure: String) -> [UInt8] {
        ProtocolError(.modelUnavailable, "recurd has no model to serve: \(failure); retry once the operator has installed a good model").replyLine
    }
}

/// Accepts on systemd's listening socket from its own thread and refuses each connection:
/// the error line, then end of file. The listening socket stays open for the daemon.
private final class RefusingAcceptor: Sendable {
    let listening: Int32
    let refusal: Refusal
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(listening: Int32, refusal: Refusal) {
        self.listening = listening
        self.refusal = refusal
    }

    func start() {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .acquiring) {
                var pfd = pollfd(fd: listening, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, 100) > 0 else { continue }
                let fd = accept(listening, nil, nil)
                guard fd >= 0 else {
                    if errno == EMFILE || errno == ENFILE { usleep(20_000) }
                    continue
                }
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)  // recurd execs nothing; kept tidy all the same
                let line = refusal.current
                DispatchQueue.global().async { Self.refuse(fd, with: line) }
            }
            finished.signal()
        }
        thread.name = "recurd-refuse"
        thread.start()
    }

    /// Stops accepting and waits until the thread no longer touches the listening socket.
    func stop() {
        stopped.store(true, ordering: .releasing)
        finished.wait()
    }

    /// Writes `line`, closes the sending side and reads what the client sent until it closes
    /// (at most a second and 1 MiB): closing with unread input would reset the connection, and
    /// the client might lose the line.
    private static func refuse(_ fd: Int32, with line: [UInt8]) {
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        shutdown(fd, Int32(SHUT_WR))
        var buffer = [UInt8](repeating: 0, count: 4096)
        var total = 0
        while total < 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            total += n
        }
        close(fd)
    }
}

/// Signals recorded as they arrive, by a plain signal handler installed at once (a dispatch
/// source registers asynchronously, and a stop sent in between would be lost). When the daemon's
/// service group and reloader make their dispatch sources for the same signals, libdispatch puts
/// its own handler in place of this one.
private final class SignalFlags: Sendable {
    init(_ signals: [Int32]) {
        _ = raisedSignals.exchange(0, ordering: .acquiringAndReleasing)  // initialized before any handler runs
        for number in signals {
            precondition(number > 0 && number < 32, "signal \(number) out of the flags' range")
            Glibc.signal(number) { received in
                raisedSignals.bitwiseOr(UInt32(1) << UInt32(received), ordering: .releasing)
            }
        }
    }

    /// The signals raised since the last call.
    func take() -> Set<Int32> {
        let bits = raisedSignals.exchange(0, ordering: .acquiringAndReleasing)
        return Set((1..<32).filter { bits & (UInt32(1) << UInt32($0)) != 0 }.map { Int32($0) })
    }
}

/// One bit per signal number (async-signal-safe: a lock-free atomic).
private let raisedSignals = Atomic<UInt32>(0)
