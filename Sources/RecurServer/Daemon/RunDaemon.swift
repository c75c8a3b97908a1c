import Logging
import RecurCore
import RecurEngine
import RecurStore
import ServiceLifecycle

/// Runs `recurd`: builds the engine for `model`, the socket server and/or the stdin pipeline
/// that `configuration` asks for, and runs them in a `ServiceGroup` until SIGTERM or SIGINT
/// (graceful: stop accepting, finish in-flight requests, then return) or, in stdin mode,
/// until the end of input.
/// - Throws: `ConfigurationError` for a configuration that cannot run or a socket path in
///   use; otherwise what a service failed with (binding the socket, reading stdin).
public func runDaemon(configuration: RecurdConfiguration, model: Model, logger: Logger) async throws {
    try configuration.validate()
    var store: StateStore?
    if let directory = configuration.stateDirectory {
        let fingerprint = ModelFingerprint(of: model)
        do {
            store = try StateStore(directory: directory, fingerprint: fingerprint, options: configuration.store)
        } catch {
            throw ConfigurationError("\(error)")
        }
        let count = store!.currentStatistics().streams
        logger.info("state store \(directory): \(count) streams, durability \(configuration.store.durability.rawValue), model \(fingerprint.modelHex)")
    }
    // Closed last: the engine's shutdown hands it a checkpoint of every stream first.
    defer { store?.close() }
    let engine = StreamEngine(model: model, options: configuration.engine, store: store)
    let notices = NoticeRouter(logger: logger)
    notices.install(on: engine)

    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
        .init(service: EngineService(engine: engine), serviceName: "engine"),
    ]
    if configuration.socketPath != nil || configuration.listeningDescriptor != nil {
        let server = SocketServer(engine: engine, configuration: configuration, notices: notices, logger: logger)
        services.append(.init(service: server, serviceName: "socket"))
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
