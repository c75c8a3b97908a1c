import Foundation
import Logging
import NIOCore
import NIOPosix
import RecurCore
import RecurEngine
import ServiceLifecycle

/// A cluster node another forwards to: its name and its peer listener.
public struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    public var node: String
    public var host: String
    public var port: Int

    public init(node: String, host: String, port: Int) {
        self.node = node
        self.host = host
        self.port = port
    }

    public var description: String { "node \(node) (\(host):\(port))" }
}

/// What a cluster gives the server so that a client can talk to any node: where a stream is
/// served when not here, and the mutual TLS of the links between nodes. The server knows no
/// cluster: recurd builds this from RecurCluster's leases and swift-nio-ssl.
public protocol RequestForwarder: Sendable {
    /// This node's name.
    var node: String { get }
    /// The node that serves `stream` now, when it is not this one and is known.
    func peer(for stream: String) -> PeerAddress?
    /// Adds the client side of a peer link's TLS to a new channel (on its event loop).
    func secureClient(_ channel: any Channel, to peer: PeerAddress) throws
    /// Adds the server side (which requires and verifies the client's certificate).
    func secureServer(_ channel: any Channel) throws
    /// How long a request for a stream nobody serves at the moment (its group is moving) is
    /// retried before the client gets `moved`.
    var retryWindow: Duration { get }
    /// Counts a request forwarded to another node.
    func forwarded()
}

/// The names of a cluster node's metrics, which recurd gives help text (docs/OBSERVABILITY.md).
public enum ClusterMetricNames {
    /// `recurd_cluster_key_groups`: groups this node holds a lease on (a gauge).
    public static let keyGroups = "recurd_cluster_key_groups"
    /// `recurd_cluster_groups_handed_off_total`.
    public static let handedOff = "recurd_cluster_groups_handed_off_total"
    /// `recurd_cluster_groups_taken_over_total`.
    public static let takenOver = "recurd_cluster_groups_taken_over_total"
    /// `recurd_cluster_groups_lost_total`.
    public static let lost = "recurd_cluster_groups_lost_total"
}

/// A cluster node's counters, as `stats` shows them.
public struct ClusterStatus: Sendable {
    public var node: String
    /// Key groups this node holds a lease on.
    public var groups: Int
    /// Requests forwarded to other nodes, groups handed off, taken (at a join, or from a dead
    /// node) and lost (a lease taken over while this node could not renew), since start.
    public var forwarded: Int
    public var handedOff: Int
    public var takenOver: Int
    public var lost: Int

    public init(node: String, groups: Int, forwarded: Int, handedOff: Int, takenOver: Int, lost: Int) {
        self.node = node
        self.groups = groups
        self.forwarded = forwarded
        self.handedOff = handedOff
        self.takenOver = takenOver
        self.lost = lost
    }
}

/// The peer protocol: the client protocol's lines, after a hello that says who the client is
/// (its uid and rights, which the owner applies as its own SO_PEERCRED would), and with a
/// `{"peer":"done"}` line after each request's replies, so that the forwarding node knows
/// where a reply ends. Only nodes holding a certificate of the cluster's CA can open a link.
enum PeerProtocol {
    static let done = #"{"peer":"done"}"#

    static func hello(_ caller: Caller, from node: String) -> ByteBuffer {
        var line = ByteBuffer(string: #"{"peer_hello":"#)
        line.writeJSONString(node)
        line.writeString(#","uid":\#(caller.uid),"acts_on_all":\#(caller.actsOnAll),"exempt":\#(caller.exemptFromLimits)}"# + "\n")
        return line
    }

    /// The caller and the forwarding node of a hello line; nil when it is not one.
    static func parseHello(_ line: ByteBuffer) -> (Caller, String)? {
        guard let hello = try? JSONValue.parse(Array(line.readableBytesView)),
              case .string(let node)? = hello["peer_hello"], case .number(let uidText)? = hello["uid"],
              let uid = UInt32(uidText), case .bool(let all)? = hello["acts_on_all"],
              case .bool(let exempt)? = hello["exempt"] else { return nil }
        return (Caller(uid: uid, actsOnAll: all, exemptFromLimits: exempt), node)
    }
}

/// One connection's link to one peer: the hello sent once, then each forwarded line and the
/// replies relayed until `done`. Used by one session at a time (requests are served in order).
final class PeerLink: @unchecked Sendable {
    let peer: PeerAddress
    private let channel: any Channel
    private let replies: AsyncThrowingStream<InboundLine, any Error>
    private var iterator: AsyncThrowingStream<InboundLine, any Error>.AsyncIterator

    private init(peer: PeerAddress, channel: any Channel, replies: AsyncThrowingStream<InboundLine, any Error>) {
        self.peer = peer
        self.channel = channel
        self.replies = replies
        iterator = replies.makeAsyncIterator()
    }

    static func connect(to peer: PeerAddress, caller: Caller, forwarder: any RequestForwarder, maxLine: Int,
                        group: any EventLoopGroup) async throws -> PeerLink {
        let (stream, continuation) = AsyncThrowingStream<InboundLine, any Error>.makeStream()
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try forwarder.secureClient(channel, to: peer)
                    try channel.pipeline.syncOperations.addHandler(LineFramingHandler(maxLength: maxLine, box: HandoverBox()))
                    try channel.pipeline.syncOperations.addHandler(ReplyRelay(continuation))
                }
            }
            .connect(host: peer.host, port: peer.port).get()
        let link = PeerLink(peer: peer, channel: channel, replies: stream)
        try await channel.writeAndFlush(PeerProtocol.hello(caller, from: forwarder.node)).get()
        return link
    }

    /// Sends `line` and hands each reply line to `relay`, up to the peer's `done`. A failure
    /// after the line went out is a `PeerLinkError` with `sent` set: the peer may have served it.
    func forward(_ line: ByteBuffer, relay: (ByteBuffer) async throws -> Void) async throws {
        var out = line
        out.writeString("\n")
        do {
            try await channel.writeAndFlush(out).get()
        } catch {
            throw PeerLinkError("cannot send to \(peer): \(error)", sent: false)
        }
        do {
            while let reply = try await iterator.next() {
                guard case .line(let bytes) = reply else { continue }
                if bytes.readableBytesView.elementsEqual(PeerProtocol.done.utf8) { return }
                try await relay(bytes)
            }
        } catch {
            throw PeerLinkError("\(error)", sent: true)
        }
        throw PeerLinkError("the link to \(peer) closed", sent: true)
    }

    func close() { channel.close(promise: nil) }

    /// Passes framed lines to the link's stream.
    private final class ReplyRelay: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = InboundLine
        let continuation: AsyncThrowingStream<InboundLine, any Error>.Continuation
        init(_ continuation: AsyncThrowingStream<InboundLine, any Error>.Continuation) { self.continuation = continuation }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { continuation.yield(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            continuation.finish(throwing: error)
            context.close(promise: nil)
        }
    }
}

struct PeerLinkError: Error, CustomStringConvertible {
    var description: String
    /// The request had gone out: the peer may have served it.
    var sent: Bool
    init(_ description: String, sent: Bool) {
        self.description = description
        self.sent = sent
    }
}

/// The peer listener (`recurd --peer-listen`): serves the requests other nodes forward, as
/// the users they name, over mutual TLS. A connection without a valid certificate of the
/// cluster's CA is refused by the handshake and logged.
public final class PeerServer: Service {
    let engine: StreamEngine
    let configuration: RecurdConfiguration
    let forwarder: any RequestForwarder
    let host: String
    let port: Int
    let logger: Logger
    let encoder: ReplyEncoder
    let metrics: ServerMetrics
    let group: any EventLoopGroup
    /// Told the bound address (the port, when 0 was asked).
    let bound: @Sendable (String, Int) -> Void
    private let ids = Locked<UInt64>(1 << 62)
    private let open = Locked<[ObjectIdentifier: any Channel]>([:])

    public init(engine: StreamEngine, configuration: RecurdConfiguration, forwarder: any RequestForwarder, host: String, port: Int,
                logger: Logger, bound: @escaping @Sendable (String, Int) -> Void = { _, _ in },
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.engine = engine
        self.configuration = configuration
        self.forwarder = forwarder
        self.host = host
        self.port = port
        self.logger = logger
        self.bound = bound
        self.group = group
        encoder = ReplyEncoder(model: engine.model)
        metrics = ServerMetrics(factory: configuration.engine.metricsFactory)
    }

    public func run() async throws {
        let maxLine = configuration.maxLineLength
        let forwarder = self.forwarder
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try forwarder.secureServer(channel)
                    try channel.pipeline.syncOperations.addHandler(LineFramingHandler(maxLength: maxLine, box: HandoverBox()))
                    return try NIOAsyncChannel<InboundLine, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let address = server.channel.localAddress
        logger.info("peer links listening on \(address?.ipAddress ?? host):\(address?.port ?? port) (mutual TLS)")
        bound(address?.ipAddress ?? host, address?.port ?? port)
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { tasks in
                    for try await connection in inbound {
                        tasks.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
            for channel in self.open.withLock({ Array($0.values) }) { channel.close(promise: nil) }
        }
    }

    private func serve(_ connection: NIOAsyncChannel<InboundLine, ByteBuffer>) async {
        let remote = connection.channel.remoteAddress.map { "\($0)" } ?? "?"
        let key = ObjectIdentifier(connection.channel)
        open.withLock { $0[key] = connection.channel }
        defer { open.withLock { $0[key] = nil } }
        let id = ids.withLock { $0 += 1; return $0 }
        var identified = false
        do {
            try await connection.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                guard case .line(let first)? = try await frames.next(), let (caller, node) = PeerProtocol.parseHello(first) else {
                    logger.warning("refused a peer connection from \(remote): it did not begin with a hello")
                    return
                }
                identified = true
                engine.identify(client: id, as: caller)
                logger.debug("peer link from node \(node) (\(remote)) for uid \(caller.uid)")
                var session = Session(engine: engine, client: id, privateStream: "~peer.\(id)", caller: caller, encoder: encoder,
                                      metrics: metrics, configuration: configuration, rateLimiter: nil, connectionCount: { 0 },
                                      forwards: false)
                var writer = ReplyWriter(allocator: connection.channel.allocator) { try await outbound.write($0) }
                while let frame = try await frames.next() {
                    try await session.serve(frame, writer: &writer)
                    writer.buffer.writeString(PeerProtocol.done + "\n")
                    try await writer.flush()
                }
            }
        } catch {
            if identified {
                logger.debug("peer link from \(remote) ended: \(error)")
            } else {
                logger.warning("refused a peer connection from \(remote): \(error)")
            }
        }
        if identified { engine.disconnect(client: id) }
    }
}
