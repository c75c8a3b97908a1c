import Logging
import RecurEngine
import RecurHTTP
import RecurServer
import RecurSystemd
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// recurd as a Type=notify service: READY=1 once the socket accepts, STATUS= with live figures,
/// RELOADING=1 ... READY=1 around a reload, STOPPING=1 on shutdown, and watchdog pings that
/// only an answering engine thread earns. Outside systemd the notifier does nothing.
struct SystemdObserver: DaemonObserver {
    let notifier: SystemdNotifier
    let logger: Logger
    /// TEST ONLY: hang the engine this long after start (RECURD_TEST_HANG_ENGINE_AFTER).
    let hangEngineAfter: Duration?
    /// How the last reload ended, kept in every later status line.
    let lastReload = LastReload()
    /// `--http` (or recurd-http.socket): where to serve /metrics, and the registry it shows.
    var http: (address: HTTPAddress, metrics: RecurdMetrics, view: ViewAccess?)?
    /// With --cluster: the node's membership (leases), as a service.
    var cluster: (@Sendable (DaemonHandle) -> [any Service])?
    /// Called once the daemon is ready (after READY=1 is sent).
    var afterReady: @Sendable () -> Void = {}

    /// Under systemd, connections wait in the fd store across a restart (the unit sets
    /// FileDescriptorStoreMax=); outside it they are closed at a graceful stop.
    var descriptorStore: (any DescriptorStore)? {
        notifier.isEnabled ? SystemdDescriptorStore(notifier: notifier) : nil
    }

    /// Under systemd, the unit's `RestartKillSignal=SIGUSR2`: systemd stops the process with it
    /// for a restart job (restart, try-restart, reload-or-restart) and with SIGTERM for every
    /// other stop, so only a restart hands the connections over (a stop's would be closed by
    /// systemd when it flushes the store, resetting clients that had sent more).
    var restartSignal: Int32? { notifier.isEnabled ? Self.restartKillSignal : nil }

    /// The unit's `RestartKillSignal=`.
    static let restartKillSignal = SIGUSR2

    func services(for daemon: DaemonHandle) -> [any Service] {
        var services: [any Service] = []
        if notifier.isEnabled {
            services.append(SystemdPulse(notifier: notifier, daemon: daemon, lastReload: lastReload, logger: logger))
        }
        if let hangEngineAfter {
            services.append(EngineHangForTesting(daemon: daemon, after: hangEngineAfter, logger: logger))
        }
        if let cluster { services += cluster(daemon) }
        if let http {
            services.append(HTTPService(address: http.address, metrics: http.metrics, daemon: daemon, view: http.view, logger: logger))
        }
        return services
    }

    func ready(_ daemon: DaemonHandle) {
        Task { [afterReady] in
            notifier.ready(status: await Self.status(daemon, lastReload: lastReload))
            afterReady()
        }
    }

    func reloading(_ daemon: DaemonHandle) {
        notifier.reloading(status: "reloading the model")
    }

    func reloaded(_ outcome: ReloadOutcome, daemon: DaemonHandle) {
        lastReload.record(outcome)
        http?.metrics.reloaded(outcome, daemon: daemon)
        Task { notifier.ready(status: await Self.status(daemon, lastReload: lastReload)) }
    }

    /// `serving 3 streams, 120.5 tokens/s, 2 connections, 5000 tokens since start`, then
    /// `; reload 2: reloaded the model` (or `; reload 2: refused, ...`) once there was one.
    static func status(_ daemon: DaemonHandle, lastReload: LastReload) async -> String {
        let stats = await daemon.engine.stats()
        let rate = (stats.tokensPerSecond * 10).rounded() / 10
        let connections = daemon.openConnections
        var line = "serving \(stats.streams) stream\(stats.streams == 1 ? "" : "s"), \(rate) tokens/s, "
            + "\(connections) connection\(connections == 1 ? "" : "s"), \(stats.tokens) token\(stats.tokens == 1 ? "" : "s") since start"
        if let reload = lastReload.summary { line += "; \(reload)" }
        return line
    }
}

/// The outcome of the last reload, numbered, for the status line.
final class LastReload: Sendable {
    private let state = Mutex<(count: Int, summary: String?)>((0, nil))

    func record(_ outcome: ReloadOutcome) {
        state.withLock { s in
            s.count += 1
            switch outcome {
            case .replaced: s.summary = "reload \(s.count): reloaded the model"
            case .refused(let reason): s.summary = "reload \(s.count): refused, the previous model serves (\(reason))"
            }
        }
    }

    var summary: String? { state.withLock { $0.summary } }
}

/// Every interval: STATUS= with live figures, and WATCHDOG=1 when the engine thread answered the
/// heartbeat asked for one tick earlier. A hung stepping loop answers nothing, the pings stop,
/// and systemd restarts the service after WatchdogSec=. On graceful shutdown: STOPPING=1.
struct SystemdPulse: Service {
    let notifier: SystemdNotifier
    let daemon: DaemonHandle
    let lastReload: LastReload
    let logger: Logger

    func run() async throws {
        let watchdog = notifier.watchdogInterval
        // A quarter of WatchdogSec= leaves three chances before systemd gives up; the status
        // line is refreshed at least every 2 s.
        let tick = min(watchdog.map { $0 / 4 } ?? .seconds(2), .seconds(2))
        if let watchdog { logger.info("systemd watchdog: pinging every \(tick) while the engine answers (WatchdogSec \(watchdog))") }
        let answered = Atomic<Bool>(false)
        daemon.engine.requestHeartbeat { answered.store(true, ordering: .releasing) }
        await withGracefulShutdownHandler {
            while !Task.isCancelled {
                // Graceful shutdown cancels the sleep, so stopping does not wait for a tick.
                do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) } } catch { break }
                if watchdog != nil, answered.exchange(false, ordering: .acquiringAndReleasing) {
                    notifier.watchdogPing()
                    daemon.engine.requestHeartbeat { answered.store(true, ordering: .releasing) }
                }
                notifier.status(await SystemdObserver.status(daemon, lastReload: lastReload))
            }
        } onGracefulShutdown: {
            notifier.stopping(status: "stopping: finishing the requests in flight")
        }
    }
}

/// TEST ONLY (`RECURD_TEST_HANG_ENGINE_AFTER=SECONDS`): hangs the engine's stepping thread after
/// a delay, so tests can prove the watchdog restarts a daemon whose engine stopped turning.
struct EngineHangForTesting: Service {
    let daemon: DaemonHandle
    let after: Duration
    let logger: Logger

    func run() async throws {
        try? await Task.sleep(for: after)
        guard !Task.isCancelled else { return }
        logger.warning("test switch RECURD_TEST_HANG_ENGINE_AFTER: hanging the engine thread now")
        daemon.engine.hangForTesting()
        try? await gracefulShutdown()
    }
}

/// systemd's file descriptor store (FDSTORE=1, FDSTOREREMOVE=1) for the socket server.
struct SystemdDescriptorStore: DescriptorStore {
    let notifier: SystemdNotifier

    func store(_ descriptor: Int32, name: String) -> Bool { notifier.store([descriptor], name: name) }
    func remove(name: String) { notifier.removeStored(name: name) }
}
