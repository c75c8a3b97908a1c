import RecurEngine
import ServiceLifecycle

/// The running daemon as an observer sees it: the engine and the live connection count.
public struct DaemonHandle: Sendable {
    /// The engine serving every stream.
    public let engine: StreamEngine
    let connections: @Sendable () -> Int

    /// Socket connections open now (0 without a socket server).
    public var openConnections: Int { connections() }

    /// A handle on `engine`, counting connections with `connections`.
    public init(engine: StreamEngine, connections: @escaping @Sendable () -> Int) {
        self.engine = engine
        self.connections = connections
    }
}

/// How a reload (SIGHUP) ended.
public enum ReloadOutcome: Sendable, Equatable {
    /// The model file was loaded again and swapped in; every stream kept its state.
    case replaced
    /// The file could not be loaded or cannot take over the streams; the old model serves on.
    /// Carries the reason as a sentence.
    case refused(String)
}

/// What an executable adds around the daemon without this layer knowing about it (recurd's
/// systemd integration): extra services in the daemon's group, and the moments a service
/// manager wants to hear about. Every method has an empty default.
public protocol DaemonObserver: Sendable {
    /// Services to run in the daemon's group beside the engine and servers (e.g. a watchdog).
    func services(for daemon: DaemonHandle) -> [any Service]
    /// The model is loaded, the engine runs and the socket (if any) accepts connections.
    func ready(_ daemon: DaemonHandle)
    /// A reload has begun (SIGHUP).
    func reloading(_ daemon: DaemonHandle)
    /// A reload has ended.
    func reloaded(_ outcome: ReloadOutcome, daemon: DaemonHandle)
    /// Where connections go at a graceful stop that is a restart, so that the next process
    /// serves them on (systemd's fd store); nil closes them at every stop.
    var descriptorStore: (any DescriptorStore)? { get }
    /// The signal by which the service manager stops the daemon for a restart (systemd's
    /// `RestartKillSignal=`). A graceful stop by it hands the connections over to
    /// `descriptorStore`; one by SIGTERM or SIGINT is a stop, which closes each connection
    /// cleanly after its last reply. nil: no restart is ever announced.
    var restartSignal: Int32? { get }
}

extension DaemonObserver {
    /// None.
    public func services(for daemon: DaemonHandle) -> [any Service] { [] }
    /// Nothing.
    public func ready(_ daemon: DaemonHandle) {}
    /// Nothing.
    public func reloading(_ daemon: DaemonHandle) {}
    /// Nothing.
    public func reloaded(_ outcome: ReloadOutcome, daemon: DaemonHandle) {}
    /// None: connections close at a graceful stop.
    public var descriptorStore: (any DescriptorStore)? { nil }
    /// None: every graceful stop is a stop.
    public var restartSignal: Int32? { nil }
}

/// The observer that does nothing: recurd outside any service manager, and tests.
public struct NoDaemonObserver: DaemonObserver {
    /// Nothing to configure.
    public init() {}
}
