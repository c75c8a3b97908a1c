import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import RecurServer
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// recurd's HTTP surface (`--http`): Hummingbird's router and HTTP/1 channel on an event loop
/// of its own at the lowest CPU priority (`backgroundGroup`), in the daemon's service group. `GET /metrics` answers anyone (it shows no
/// stream text); the live view (`LiveView`: `/`, `/streams`, `/model`, `/events`) needs a
/// token of `view`; every other path is 404.
///
/// It binds itself rather than through `Hummingbird.Application`, whose server binds an
/// address only: under systemd the listening socket comes in as a descriptor
/// (`recurd-http.socket`), which NIO's bootstrap takes as it is.
public struct HTTPService: Service {
    let address: HTTPAddress
    let responder: RouterResponder<HTTPContext>
    let group: any EventLoopGroup
    let logger: Logger
    let view: ViewAccess?

    /// Serves `metrics` for `daemon` at `address` on `group`'s event loops, and the live view
    /// to the holders of `view`'s tokens.
    public init(address: HTTPAddress, metrics: RecurdMetrics, daemon: DaemonHandle, view: ViewAccess?, logger: Logger,
                group: any EventLoopGroup = HTTPService.backgroundGroup) {
        self.address = address
        self.group = group
        self.logger = logger
        self.view = view
        let router = Router(context: HTTPContext.self)
        router.get("metrics") { _, _ -> Response in
            let body = await metrics.exposition(of: daemon)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
        if let view {
            LiveView(engine: daemon.engine, access: view, metrics: metrics).addRoutes(to: router)
        }
        responder = router.buildResponder()
    }

    /// Binds (or adopts the passed socket), logs the address bound and serves until a graceful
    /// shutdown: then it stops accepting, and each connection closes after the response in
    /// progress.
    public func run() async throws {
        let responder = self.responder, logger = self.logger
        let channelSetup = HTTP1Channel(responder: { request, responseWriter, channel in
            let context = HTTPContext(source: .init(channel: channel, logger: logger))
            let response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch {
                response = Response(status: .internalServerError)
            }
            try await responseWriter.write(response: response.head, body: response.body)
        }, configuration: Self.channelConfiguration)
        var socketFile: ListeningUnixSocket?
        defer { socketFile?.remove() }
        let server: NIOAsyncChannel<Connection, Never>
        do {
            if case .unix(let path) = address { socketFile = try ListeningUnixSocket(path: path) }
            server = try await bind(socketFile?.descriptor) { channel in channelSetup.setup(channel: channel, logger: logger) }
        } catch let error as ConfigurationError {
            throw HTTPServiceError("cannot serve HTTP at \(address): \(error.message)")
        } catch let error as IOError {
            throw HTTPServiceError("cannot serve HTTP at \(address): \(String(cString: strerror(error.errnoCode)))")
        }
        view?.address = boundDescription(server.channel.localAddress)
        logger.info("HTTP listening on \(boundDescription(server.channel.localAddress))",
                    metadata: ["recurd.http": "\(boundDescription(server.channel.localAddress))"])
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { connections in
                    for try await connection in inbound {
                        // The connection's task runs on its channel's (background) event loop.
                        connections.addTask(executorPreference: EventLoopTaskExecutor(connection.channel.eventLoop)) {
                            await withGracefulShutdownHandler {
                                await channelSetup.handle(value: connection, logger: logger)
                            } onGracefulShutdown: {
                                connection.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
                            }
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    private typealias Connection = HTTP1Channel.Value

    /// One event loop whose thread runs under `SCHED_IDLE`, for the HTTP surface: its
    /// connections' tasks run there too (`EventLoopTaskExecutor`), so encoding a live view's
    /// events and answering scrapes take only the CPU the socket's clients and the engine leave
    /// (the kernel preempts an idle-policy thread as soon as any other thread wakes; nice 19
    /// alone still let it delay a feed by milliseconds). docs/PERFORMANCE.md measures the
    /// feeds' round trip with a viewer attached. Where the policy cannot be set, the thread
    /// runs at nice 19, and where that fails too, at the daemon's priority.
    public static let backgroundGroup: MultiThreadedEventLoopGroup = {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        _ = try? group.next().submit { lowerThisThreadsPriority() }.wait()
        return group
    }()

    /// `SCHED_IDLE` (or else nice 19) for the calling thread only: on Linux both belong to
    /// each thread, and pid 0 is the calling one.
    private static func lowerThisThreadsPriority() {
        #if os(Linux)
        var parameters = sched_param(sched_priority: 0)
        let idlePolicy: Int32 = 5  // SCHED_IDLE (linux/sched.h; Glibc shows it only with _GNU_SOURCE)
        if sched_setscheduler(0, idlePolicy, &parameters) != 0 {
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
        }
        #endif
    }

    /// An idle connection is closed after 30 s, and request heads are small: /metrics needs no
    /// more, and a client cannot hold much of the daemon's memory or descriptors.
    private static let channelConfiguration = HTTP1Channel.Configuration(
        idleTimeout: .seconds(30),
        httpDecoderConfiguration: .init(maxHeaderFieldSize: 8192, maxHeaderListSize: 16384, maxHeaderFieldCount: 100))

    /// Binds `address`, or serves on `unixSocket` (bound by `ListeningUnixSocket` for a
    /// `unix:` address).
    private func bind(_ unixSocket: Int32?, _ setup: @escaping @Sendable (any Channel) -> EventLoopFuture<Connection>) async throws
        -> NIOAsyncChannel<Connection, Never> {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            // What the kernel holds for a client that does not read (a stalled live-view
            // viewer): 256 KiB, not the megabytes autotuning would grow to.
            .childChannelOption(ChannelOptions.socketOption(.so_sndbuf), value: 256 * 1024)
        switch address {
        case .tcp(let host, let port):
            return try await bootstrap.serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port) { setup($0) }
        case .unix:
            return try await bootstrap.bind(unixSocket!, cleanupExistingSocketFile: false) { setup($0) }
        case .descriptor(let descriptor):
            return try await bootstrap.bind(descriptor, cleanupExistingSocketFile: false) { setup($0) }
        }
    }

    /// `address`'s description; for a TCP address the port actually bound (port 0 takes a free one).
    private func boundDescription(_ bound: SocketAddress?) -> String {
        switch (address, bound) {
        case (.unix, _): address.description
        case (_, .v4(let a)?): "\(a.host):\(bound?.port ?? 0)"
        case (_, .v6(let a)?): "[\(a.host)]:\(bound?.port ?? 0)"
        default: address.description
        }
    }
}

/// Why the HTTP surface could not start, as a sentence naming the address.
struct HTTPServiceError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) { self.description = description }
}

/// The request context of recurd's HTTP surface: Hummingbird's basic one and the connection's
/// channel, which a live view's event stream watches to notice a viewer that went away.
struct HTTPContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
