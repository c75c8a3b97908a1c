import Logging
import RecurCore
import RecurEngine
import ServiceLifecycle

/// Runs `recurd`: builds the engine for `model`, the socket server and/or the stdin pipeline
/// that `configuration` asks for, and runs them in a `ServiceGroup` until SIGTERM or SIGINT
/// (graceful: stop accepting, finish in-flight requests, then return), the observer's
/// `restartSignal` (the same, handing the connections over to its `descriptorStore`) or, in
/// stdin mode, until the end of input. With `configuration.modelPath`, SIGHUP reloads the model
/// (`ModelReloader`). `store`, opened by the caller for `model`, keeps the streams durably;
/// it is closed here, after the engine has stopped. `observer` adds services and hears of readiness and reloads (recurd's
/// systemd integration plugs in there).
/// - Throws: `ConfigurationError` for a configuration that cannot run or a socket path in
///   use; otherwise what a service failed with (binding the socket, reading stdin).
public func runDaemon(configuration: RecurdConfiguration, model: Model, store: (any DaemonStateStore)? = nil, logger: Logger,
                      observer: any DaemonObserver = NoDaemonObserver()) async throws {
    try configuration.validate()
    // Closed last: the engine's shutdown hands it a checkpoint of every stream first.
    defer { store?.close() }
    var engineOptions = configuration.engine
    if configuration.stdin, !configuration.expireStdinStreams {
        engineOptions.clientsExemptFromExpiry.insert(StdinPipeline.client)
    }
    let engine = StreamEngine(model: model, options: engineOptions, store: store)
    let notices = NoticeRouter(logger: logger)
    notices.install(on: engine)
    let serving = configuration.socketPath != nil || configuration.listeningDescriptor != nil
    let limiter = ConnectionLimiter(limit: configuration.maxConnections)
    let daemon = DaemonHandle(engine: engine, connections: { limiter.open })

    // Ready once the socket accepts, or (stdin only) once the engine runs.
    let announce: @Sendable () -> Void = { observer.ready(daemon) }
    let engineStarted: @Sendable () -> Void
    if serving { engineStarted = {} } else { engineStarted = announce }
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
        .init(service: EngineService(engine: engine, started: engineStarted), serviceName: "engine"),
    ]
    // Private streams left in the store by a process that is gone: their text is secret and
    // no connection can own them again, unless the connection was handed over to this process.
    let discardLeftoverPrivateStreams: @Sendable (Set<String>) -> Void = { [store] keeping in
        guard let discarded = store?.discardStreams(where: StreamName.isPrivate, keeping: keeping), !discarded.isEmpty else { return }
        logger.info("deleted \(discarded.count) private streams of connections that are gone from the state store",
                    metadata: ["recurd.store.discarded": "\(discarded.count)"])
    }
    // A restart is told from a stop by its signal; trapped before anything is served.
    let restart = RestartRequest()
    let restartListener = observer.restartSignal.map { RestartSignalListener(signal: $0, request: restart, logger: logger) }
    if serving {
        let server = SocketServer(engine: engine, configuration: configuration, notices: notices, logger: logger,
                                  limiter: limiter, listening: announce,
                                  descriptorStore: observer.descriptorStore, restart: restart,
                                  adoptedPrivateStreams: discardLeftoverPrivateStreams)
        services.append(.init(service: server, serviceName: "socket"))
    } else {
        discardLeftoverPrivateStreams([])
    }
    if let path = configuration.modelPath {
        services.append(.init(service: ModelReloader(path: path, daemon: daemon, observer: observer, logger: logger), serviceName: "reload"))
    }
    for (i, service) in observer.services(for: daemon).enumerated() {
        services.append(.init(service: service, serviceName: "observer-\(i)"))
    }
    if let restartListener {
        // The restart signal ends it, which shuts the group down gracefully as SIGTERM does.
        services.append(.init(service: restartListener, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "restart"))
    }
    if configuration.stdin {
        // The end of input ends the daemon, as a pipeline stage should.
        let pipeline = StdinPipeline(engine: engine, configuration: configuration, notices: notices, logger: logger)
        services.append(.init(service: pipeline, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "stdin"))
    }
    var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                       logger: logger)
    groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
    groupConfiguration.maximumCancellationDuration = .seconds(5)
    try await ServiceGroup(configuration: groupConfiguration).run()
}
