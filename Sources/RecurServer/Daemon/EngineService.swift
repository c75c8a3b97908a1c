import RecurEngine
import ServiceLifecycle

/// The engine's stepping thread as a service: started when the group runs, shut down once
/// graceful shutdown reaches it. Listed first in the group, it is shut down last, after the
/// servers have finished their in-flight requests.
public struct EngineService: Service {
    /// The engine this service runs.
    public let engine: StreamEngine
    let started: @Sendable () -> Void

    /// A service for `engine`, which must not be started yet; `started` is called once it runs.
    public init(engine: StreamEngine, started: @escaping @Sendable () -> Void = {}) {
        self.engine = engine
        self.started = started
    }

    /// Starts the engine, waits for graceful shutdown (or cancellation), shuts the engine down.
    public func run() async throws {
        engine.start()
        started()
        defer { engine.shutdown() }
        // Returns on graceful shutdown; throws CancellationError on cancellation.
        try? await gracefulShutdown()
    }
}
