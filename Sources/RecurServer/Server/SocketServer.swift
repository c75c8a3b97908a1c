import Logging
import NIOCore
import NIOPosix
import RecurEngine
import ServiceLifecycle

/// The Unix-socket server: newline-delimited JSON requests in, events and replies out
/// (docs/PROTOCOL.md). Each connection is served by its own task, its requests in order,
/// and its failures end only that connection.
///
/// On graceful shutdown it stops accepting, lets every connection finish the requests it has
/// already received, closes them, and removes the socket file it created.
public final class SocketServer: Service {
    let engine: StreamEngine
    let configuration: RecurdConfiguration
    let notices: NoticeRouter
    let logger: Logger
    let group: any EventLoopGroup
    let encoder: ReplyEncoder
    let limiter: ConnectionLimiter
    let listening: @Sendable () -> Void
    let rateLimiter: ByteRateLimiter?

    /// - Parameters:
    ///   - notices: the router installed on `engine` (`NoticeRouter.install(on:)`); the server
    ///     opens a mailbox on it for each connection.
    ///   - listening: called once the socket accepts connections.
    ///   - group: the event loops for the sockets.
    public convenience init(engine: StreamEngine, configuration: RecurdConfiguration, notices: NoticeRouter, logger: Logger,
                            listening: @escaping @Sendable () -> Void = {},
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.init(engine: engine, configuration: configuration, notices: notices, logger: logger,
                  limiter: ConnectionLimiter(limit: configuration.maxConnections), listening: listening, group: group)
    }

    /// The same with a shared `limiter` (the daemon counts connections for its status).
    init(engine: StreamEngine, configuration: RecurdConfiguration, notices: NoticeRouter, logger: Logger,
         limiter: ConnectionLimiter, listening: @escaping @Sendable () -> Void,
         group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        precondition(configuration.socketPath != nil || configuration.listeningDescriptor != nil,
                     "a socket server needs a socket path or a listening descriptor")
        self.engine = engine
        self.configuration = configuration
        self.notices = notices
        self.logger = logger
        self.group = group
        encoder = ReplyEncoder(model: engine.model)
        self.limiter = limiter
        self.listening = listening
        rateLimiter = configuration.maxBytesPerSecondPerUser.map { ByteRateLimiter(bytesPerSecond: $0) }
    }

    /// Connections open now.
    public var openConnections: Int { limiter.open }

    /// Binds (or adopts the listening descriptor), serves until graceful shutdown, then waits
    /// for the open connections to finish.
    /// - Throws: `ConfigurationError` when the socket path is taken; NIO's error when binding fails.
    public func run() async throws {
        let access = try AccessPolicy(adminGroupNamed: configuration.adminGroup)
        let server = try await bind()
        let address = configuration.socketPath.map { "'\($0)'" } ?? "descriptor \(configuration.listeningDescriptor!)"
        logger.info("listening on \(address)", metadata: ["recurd.connections.max": "\(configuration.maxConnections)"])
        listening()
        defer {
            if let path = configuration.socketPath { SocketPath.remove(path) }
        }
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { inbound in
                try await withGracefulShutdownHandler {
                    for try await connection in inbound {
                        let id = limiter.nextID()
                        group.addTask { await self.serve(connection, id: id, access: access) }
                    }
                } onGracefulShutdown: {
                    server.channel.close(promise: nil)
                }
            }
            logger.info("stopped accepting connections; finishing the open ones")
        }
    }

    private func bind() async throws -> NIOAsyncChannel<NIOAsyncChannel<InboundLine, ByteBuffer>, Never> {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
        let maxLine = configuration.maxLineLength
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<InboundLine, ByteBuffer>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: maxLine)))
                // Few buffered lines: a client that is not served fast enough stops being read.
                return try NIOAsyncChannel<InboundLine, ByteBuffer>(
                    wrappingChannelSynchronously: channel,
                    configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 4)))
            }
        }
        if let descriptor = configuration.listeningDescriptor {
            return try await bootstrap.bind(descriptor, childChannelInitializer: initializer)
        }
        let path = configuration.socketPath!
        try SocketPath.prepare(path)
        let server = try await bootstrap.bind(unixDomainSocketPath: path, childChannelInitializer: initializer)
        if let mode = configuration.socketMode {
            do {
                try SocketPath.setMode(mode, of: path)
            } catch {
                try? await server.channel.close()
                throw error
            }
        }
        return server
    }

    /// Serves one connection until the client closes it, it fails, or shutdown; never throws.
    private func serve(_ channel: NIOAsyncChannel<InboundLine, ByteBuffer>, id: ClientID, access: AccessPolicy) async {
        var logger = self.logger
        logger[metadataKey: "recurd.connection"] = "\(id)"
        guard limiter.admit() else {
            logger.warning("refused a connection: the limit of \(limiter.limit) connections is reached")
            await refuse(channel, ProtocolError(.busy, "connection limit of \(limiter.limit) reached"))
            return
        }
        defer { limiter.release() }
        let caller: Caller
        do {
            caller = access.caller(for: try await PeerCredentials.of(channel.channel))
        } catch {
            // Without the peer's uid no stream could be given an owner: serve nothing.
            logger.error("refused a connection: cannot read its credentials: \(error)")
            await refuse(channel, ProtocolError(.internal, "the daemon cannot tell which user this connection belongs to (\(error)); connect over a Unix socket"))
            return
        }
        logger[metadataKey: "recurd.uid"] = "\(caller.uid)"
        logger.debug("connection opened", metadata: ["recurd.admin": "\(caller.actsOnAll)"])
        engine.identify(client: id, as: caller)
        let mailbox = notices.open(id)
        var session = Session(engine: engine, client: id, caller: caller, encoder: encoder, configuration: configuration,
                              rateLimiter: caller.exemptFromLimits ? nil : rateLimiter,
                              connectionCount: { [limiter] in limiter.open })
        do {
            try await channel.executeThenClose { inbound, outbound in
                try await withThrowingDiscardingTaskGroup { tasks in
                    tasks.addTask { [encoder] in
                        for await notice in mailbox {
                            var line = ByteBuffer()
                            encoder.notice(notice, into: &line)
                            try await outbound.write(line)
                        }
                    }
                    var writer = ReplyWriter(allocator: channel.channel.allocator) { try await outbound.write($0) }
                    try await withGracefulShutdownHandler {
                        for try await frame in inbound {
                            try await session.serve(frame, writer: &writer)
                        }
                    } onGracefulShutdown: {
                        // Stop reading; the lines already received are still served.
                        channel.channel.close(mode: .input, promise: nil)
                    }
                    notices.close(id)
                    await session.endPrivateStream()
                    try await Self.drain(channel.channel)
                }
            }
            logger.debug("connection closed")
        } catch {
            logger.debug("connection ended: \(error)")
        }
        notices.close(id)
        await session.endPrivateStream()
        engine.disconnect(client: id)
    }

    /// Tells a connection that will not be served why it is closed.
    private func refuse(_ channel: NIOAsyncChannel<InboundLine, ByteBuffer>, _ error: ProtocolError) async {
        var line = ByteBuffer()
        encoder.error(error, id: nil, into: &line)
        try? await channel.executeThenClose { _, outbound in
            try await outbound.write(line)
            try await Self.drain(channel.channel)
        }
    }

    /// Waits until everything written so far has reached the socket (closing would drop it);
    /// cancellation closes the channel instead, failing the wait.
    static func drain(_ channel: any Channel) async throws {
        guard channel.isActive else { return }  // the client is gone: nothing can be delivered
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(ByteBuffer(), promise: written)
        try await withTaskCancellationHandler {
            try await written.futureResult.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }
}
