import Logging
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import RecurEngine
import ServiceLifecycle

/// The Unix-socket server: newline-delimited JSON requests in, events and replies out
/// (docs/PROTOCOL.md). Each connection is served by its own task, its requests in order,
/// and its failures end only that connection.
///
/// On graceful shutdown it stops accepting, lets every connection finish the request it is
/// being served, closes them cleanly (or, at a restart with a descriptor store, hands them over
/// to the next process with the requests queued behind it), and removes the socket file it
/// created.
public final class SocketServer: Service {
    let engine: StreamEngine
    let configuration: RecurdConfiguration
    let notices: NoticeRouter
    let logger: Logger
    let group: any EventLoopGroup
    let encoder: ReplyEncoder
    let metrics: ServerMetrics
    let limiter: ConnectionLimiter
    let listening: @Sendable () -> Void
    let rateLimiter: ByteRateLimiter?
    /// Where connections go at a restart instead of being closed (systemd's fd store).
    let descriptorStore: (any DescriptorStore)?
    /// Set when the graceful stop is a restart; otherwise the connections are closed.
    let restart: RestartRequest
    /// Drawn at start: part of every private stream's name, so that no name recurs.
    let privateTag = UInt64.random(in: 0...UInt64.max)
    /// Told, before any connection is served, the private streams of the connections taken
    /// over from the previous process: every other private stream in the state store is left
    /// over from a process that is gone, and nobody may see it again.
    let adoptedPrivateStreams: @Sendable (Set<String>) -> Void

    /// - Parameters:
    ///   - notices: the router installed on `engine` (`NoticeRouter.install(on:)`); the server
    ///     opens a mailbox on it for each connection.
    ///   - listening: called once the socket accepts connections.
    ///   - group: the event loops for the sockets.
    ///   - descriptorStore: where connections are handed over at a graceful stop that is a
    ///     restart; nil closes them.
    ///   - restart: set before the graceful shutdown when it is a restart (`RestartSignalListener`).
    public convenience init(engine: StreamEngine, configuration: RecurdConfiguration, notices: NoticeRouter, logger: Logger,
                            listening: @escaping @Sendable () -> Void = {}, descriptorStore: (any DescriptorStore)? = nil,
                            restart: RestartRequest = RestartRequest(),
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.init(engine: engine, configuration: configuration, notices: notices, logger: logger,
                  limiter: ConnectionLimiter(limit: configuration.maxConnections), listening: listening,
                  descriptorStore: descriptorStore, restart: restart, group: group)
    }

    /// The same with a shared `limiter` (the daemon counts connections for its status).
    init(engine: StreamEngine, configuration: RecurdConfiguration, notices: NoticeRouter, logger: Logger,
         limiter: ConnectionLimiter, listening: @escaping @Sendable () -> Void, descriptorStore: (any DescriptorStore)?,
         restart: RestartRequest, adoptedPrivateStreams: @escaping @Sendable (Set<String>) -> Void = { _ in },
         group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        precondition(configuration.socketPath != nil || configuration.listeningDescriptor != nil,
                     "a socket server needs a socket path or a listening descriptor")
        self.engine = engine
        self.configuration = configuration
        self.notices = notices
        self.logger = logger
        self.group = group
        encoder = ReplyEncoder(model: engine.model)
        metrics = ServerMetrics(factory: configuration.engine.metricsFactory)
        self.limiter = limiter
        self.listening = listening
        self.descriptorStore = descriptorStore
        self.restart = restart
        self.adoptedPrivateStreams = adoptedPrivateStreams
        rateLimiter = configuration.maxBytesPerSecondPerUser.map { ByteRateLimiter(bytesPerSecond: $0) }
    }

    /// Connections open now.
    public var openConnections: Int { limiter.open }

    /// Binds (or adopts the listening descriptor), serves until graceful shutdown, then waits
    /// for the open connections to finish: each stops reading, finishes the request it is being
    /// served (those queued behind it are not executed), flushes the replies and is closed
    /// cleanly (the client reads its replies, then end of file). At a restart (`restart` set)
    /// with a `DescriptorStore` (recurd under systemd), each connection is instead put into the
    /// store, with the lines it had queued and what it had not yet framed, for the next process
    /// (`configuration.inheritance`), which serves it on as if nothing happened.
    /// - Throws: `ConfigurationError` when the socket path is taken; the system's error when
    ///   binding fails.
    public func run() async throws {
        let access = try AccessPolicy(adminGroupNamed: configuration.adminGroup)
        let (listeningDescriptor, bound) = try openListeningSocket()
        let inherited = adoptInheritance()
        adoptedPrivateStreams(Set(inherited.compactMap { $0.0.privateStreamName }))
        let address = configuration.socketPath.map { "'\($0)'" } ?? "descriptor \(listeningDescriptor)"
        logger.info("listening on \(address)", metadata: ["recurd.connections.max": "\(configuration.maxConnections)"])
        listening()
        let collector = HandoverCollector()
        try await withThrowingDiscardingTaskGroup { group in
            for (record, descriptor) in inherited {
                spawn(in: &group) { loop in
                    await self.serve(descriptor: descriptor, on: loop, id: record.id, resumed: record, access: access, collector: collector)
                }
            }
            let acceptor = Acceptor(listening: listeningDescriptor)
            let accepted = acceptor.connections()
            await withGracefulShutdownHandler {
                for await descriptor in accepted {
                    let id = limiter.nextID()
                    spawn(in: &group) { loop in
                        await self.serve(descriptor: descriptor, on: loop, id: id, resumed: nil, access: access, collector: collector)
                    }
                }
            } onGracefulShutdown: {
                acceptor.stop()
            }
            if descriptorStore == nil {
                logger.info("stopped accepting connections; finishing the open ones")
            } else if handsOver {
                logger.info("stopped accepting connections; handing the open ones over to the next process")
            } else {
                // Under systemd: say once why the connections are not kept for a next process.
                logger.notice("stopping, not restarting: finishing the requests in flight, then closing each connection cleanly")
            }
        }
        var keepPath = false
        if let store = descriptorStore, handsOver {
            keepPath = handOver(listening: listeningDescriptor, connections: collector.all, to: store)
        }
        close(listeningDescriptor)
        if let bound, !keepPath { SocketPath.remove(bound) }
    }

    /// Whether the connections go to the descriptor store: a restart with a store. Only read
    /// once the graceful shutdown has begun, after `restart` was set.
    private var handsOver: Bool { descriptorStore != nil && restart.isSet }

    /// Runs a connection's task on the event loop its channel will use: no thread hop between
    /// reading a line, serving it and writing the reply.
    private func spawn(in group: inout ThrowingDiscardingTaskGroup<any Error>,
                       _ body: @escaping @Sendable (any EventLoop) async -> Void) {
        let loop = self.group.next()
        if #available(macOS 15.0, *) {
            group.addTask(executorPreference: EventLoopTaskExecutor(loop)) { await body(loop) }
        } else {
            group.addTask { await body(loop) }
        }
    }

    /// Stores the state of the handed-over connections (and the listening socket this process
    /// bound itself) for the next process. Returns whether the listening socket was stored.
    private func handOver(listening: Int32, connections: [HandedOverConnection], to store: any DescriptorStore) -> Bool {
        let storedListening = configuration.socketPath != nil && store.store(listening, name: HandoverState.listenName)
        do {
            let state = HandoverState(lastID: limiter.lastID, connections: connections.sorted { $0.id < $1.id })
            let memfd = try state.writeMemfd()
            defer { close(memfd) }
            guard store.store(memfd, name: HandoverState.stateName) else {
                logger.error("could not store the handover state; the next process will not find the \(connections.count) connections")
                return storedListening
            }
            logger.notice("handed \(connections.count) connections over to the next process", metadata: ["recurd.handover.connections": "\(connections.count)"])
        } catch {
            logger.error("could not hand the connections over: \(error)")
        }
        return storedListening
    }

    /// The listening socket: the one given (socket activation, or the previous process's), or
    /// a new one bound at the socket path (with the file it bound, to remove at the end).
    private func openListeningSocket() throws -> (Int32, SocketPath.Bound?) {
        let backlog = ListenBacklog.backlog(forConnectionLimit: configuration.maxConnections)
        if let maximum = ListenBacklog.systemMaximum(), maximum < configuration.maxConnections {
            logger.warning("the kernel caps the listen backlog at \(maximum) (net.core.somaxconn), below the limit of \(configuration.maxConnections) connections: more connections arriving at the same instant are refused; raise it with sysctl net.core.somaxconn=\(configuration.maxConnections)")
        }
        if let descriptor = configuration.listeningDescriptor {
            try SocketPath.checkPassedListening(descriptor)
            if !ListenBacklog.apply(backlog, to: descriptor) {
                logger.warning("cannot set the listen backlog of the given socket to \(backlog): \(String(cString: strerror(errno)))")
            }
            return (descriptor, nil)
        }
        let path = configuration.socketPath!
        try SocketPath.prepare(path)
        if let concern = SocketPath.directoryConcern(for: path) { logger.warning("\(concern)") }
        let bound = try SocketPath.bindListening(path, backlog: backlog, mode: configuration.socketMode)
        return (bound.descriptor, bound)
    }

    /// The connections the previous process handed over, each with its socket, once all of it
    /// checks out (`Inheritance.adopt`); anything inconsistent closes them all.
    private func adoptInheritance() -> [(HandedOverConnection, Int32)] {
        guard let inheritance = configuration.inheritance else { return [] }
        let adopted = inheritance.adopt(store: descriptorStore, logger: logger)
        limiter.reserve(through: adopted.lastID)
        return adopted.connections
    }

    /// The channel for a connected socket: our framing (resuming handed-over input), the
    /// connection's queue bound and the async wrapper.
    private func channel(for descriptor: Int32, on loop: any EventLoop, resuming input: UnframedInput?,
                         box: HandoverBox) async throws -> (NIOAsyncChannel<InboundLine, ByteBuffer>, QueueGate.Handle) {
        let maxLine = configuration.maxLineLength
        let bound = configuration.maxQueuedBytes
        return try await ClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            // One read (at most 64 KiB) at a time, so the gate's bound is overshot by one read at most.
            .channelOption(.maxMessagesPerRead, value: 1)
            // Replies wait for the socket up to the bound; then the session's writes suspend.
            .channelOption(.writeBufferWaterMark, value: .init(low: max(1, bound / 2), high: bound))
            .withConnectedSocket(descriptor) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let gate = QueueGate(bound: bound)
                    try channel.pipeline.syncOperations.addHandler(LineFramingHandler(maxLength: maxLine, resuming: input, box: box))
                    try channel.pipeline.syncOperations.addHandler(gate)
                    // Few buffered lines: a client that is not served fast enough stops being read.
                    let wrapped = try NIOAsyncChannel<InboundLine, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 4)))
                    return (wrapped, QueueGate.Handle(gate: NIOLoopBound(gate, eventLoop: channel.eventLoop), channel: channel))
                }
            }
    }

    /// Serves one accepted or handed-over socket; never throws.
    private func serve(descriptor: Int32, on loop: any EventLoop, id: ClientID, resumed: HandedOverConnection?,
                       access: AccessPolicy, collector: HandoverCollector) async {
        let box = HandoverBox()
        let channel: NIOAsyncChannel<InboundLine, ByteBuffer>
        let gate: QueueGate.Handle
        do {
            (channel, gate) = try await self.channel(for: descriptor, on: loop, resuming: resumed?.input, box: box)
        } catch {
            logger.warning("could not serve a connection: \(error)", metadata: ["recurd.connection": "\(id)"])
            close(descriptor)
            return
        }
        await serve(channel, gate: gate, descriptor: descriptor, id: id, resumed: resumed, box: box, access: access, collector: collector)
    }

    /// Serves one connection until the client closes it, it fails, shutdown, or a handover;
    /// never throws.
    private func serve(_ channel: NIOAsyncChannel<InboundLine, ByteBuffer>, gate: QueueGate.Handle, descriptor: Int32, id: ClientID,
                       resumed: HandedOverConnection?, box: HandoverBox, access: AccessPolicy,
                       collector: HandoverCollector) async {
        var logger = self.logger
        logger[metadataKey: "recurd.connection"] = "\(id)"
        guard limiter.admit() else {
            logger.warning("refused a connection: the limit of \(limiter.limit) connections is reached")
            await refuse(channel, gate: gate, ProtocolError(.busy, "connection limit of \(limiter.limit) reached"))
            return
        }
        defer { limiter.release() }
        let caller: Caller
        do {
            caller = access.caller(for: try await PeerCredentials.of(channel.channel))
        } catch {
            // Without the peer's uid no stream could be given an owner: serve nothing.
            logger.error("refused a connection: cannot read its credentials: \(error)")
            await refuse(channel, gate: gate, ProtocolError(.internal, "the daemon cannot tell which user this connection belongs to (\(error)); connect over a Unix socket"))
            return
        }
        logger[metadataKey: "recurd.uid"] = "\(caller.uid)"
        logger.debug(resumed == nil ? "connection opened" : "connection taken over", metadata: ["recurd.admin": "\(caller.actsOnAll)"])
        engine.identify(client: id, as: caller)
        if let resumed { engine.subscribe(client: id, to: resumed.subscriptions) }
        let mailbox = notices.open(id)
        let privateStream = resumed?.privateStreamName ?? StreamName.privateStream(of: id, tag: privateTag)
        var session = Session(engine: engine, client: id, privateStream: privateStream, caller: caller, encoder: encoder,
                              metrics: metrics, configuration: configuration, rateLimiter: caller.exemptFromLimits ? nil : rateLimiter,
                              connectionCount: { [limiter] in limiter.open })
        session.usedPrivateStream = resumed?.usedPrivateStream ?? false
        let store = descriptorStore
        var handedOver = false
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
                    // Set at a graceful stop: the request being served is finished, not the ones
                    // queued behind it (`QueuedAtStop`).
                    let atStop = Locked<QueuedAtStop?>(nil)
                    var queued = QueuedLines()
                    try await withGracefulShutdownHandler {
                        for try await frame in inbound {
                            switch atStop.withLock({ $0 }) {
                            case .drop?:
                                queued.dropped += 1
                                continue
                            case .handOver?:
                                if case .line(let line) = frame, queued.hold(line) { continue }
                                // An over-long line has no bytes to hand over: serve the held lines
                                // before its error, in order, and everything after it.
                                queued.servesAll = true
                                for line in queued.takeAll() { try await session.serve(.line(line), writer: &writer) }
                            case nil:
                                break
                            }
                            let size = QueueGate.size(of: frame)
                            try await session.serve(frame, writer: &writer)
                            gate.served(size)
                        }
                    } onGracefulShutdown: {
                        // Stop reading now and end the inbound stream after the lines already
                        // framed. Only the request being served is finished: at a restart the
                        // lines queued behind it and what is still in the socket wait for the
                        // next process; at a stop they are dropped, and the connection is closed
                        // cleanly once that request is answered.
                        let handsOver = self.handsOver
                        atStop.withLock { $0 = handsOver ? .handOver : .drop }
                        let raw = channel.channel
                        let gate = gate.gate
                        raw.eventLoop.execute {
                            gate.value.stopReading()
                            try? raw.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
                            raw.pipeline.fireUserInboundEventTriggered(HandoverEvent())
                        }
                    }
                    if box.input == nil {
                        // The client ended its input first: there is no handover, serve them.
                        for line in queued.takeAll() { try await session.serve(.line(line), writer: &writer) }
                    }
                    if queued.dropped > 0 { logger.debug("stopping: \(queued.dropped) requests read but not started get no reply") }
                    notices.close(id)
                    if let input = box.input, let store, self.handsOver {
                        try await Self.drain(channel.channel)
                        let record = HandedOverConnection(id: id, name: HandoverState.connectionName(id),
                                                          privateStream: session.privateStream, input: queued.input(before: input),
                                                          usedPrivateStream: session.usedPrivateStream,
                                                          subscriptions: engine.subscriptions(of: id))
                        // The store keeps its own copy of the socket; closing ours below does not
                        // end the connection.
                        if store.store(descriptor, name: record.name) {
                            collector.add(record)
                            handedOver = true
                            return
                        }
                        logger.warning("could not hand the connection over; closing it")
                    }
                    await session.endPrivateStream()
                    try await Self.drain(channel.channel)
                    if box.input != nil {
                        // A stop: the client reads its replies, then end of file (not a reset).
                        await gate.closeGracefully(timeout: Self.closingTimeout)
                    }
                }
            }
            logger.debug(handedOver ? "connection handed over" : "connection closed")
        } catch {
            logger.debug("connection ended: \(error)")
        }
        notices.close(id)
        session.closeLinks()
        if !handedOver { await session.endPrivateStream() }
        engine.disconnect(client: id)
    }

    /// How long a connection the daemon closes (a stop, a refusal) may take to close its end
    /// after reading its last reply; what it sends meanwhile is discarded.
    static let closingTimeout = TimeAmount.seconds(2)

    /// Tells a connection that will not be served why it is closed; it reads that line, then
    /// end of file (not a reset, even when it had already sent requests).
    private func refuse(_ channel: NIOAsyncChannel<InboundLine, ByteBuffer>, gate: QueueGate.Handle, _ error: ProtocolError) async {
        metrics.connectionsRefused.increment()
        var line = ByteBuffer()
        encoder.error(error, id: nil, into: &line)
        try? await channel.executeThenClose { _, outbound in
            try await outbound.write(line)
            try await Self.drain(channel.channel)
            await gate.closeGracefully(timeout: Self.closingTimeout)
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
