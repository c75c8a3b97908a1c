import NIOCore
import NIOPosix
import RecurCore
import RecurEngine

/// One connection's view of the daemon: serves its requests in order against the engine and
/// writes the replies. Every failure a request can cause becomes an error line; only a failed
/// write (the client went away) is thrown.
struct Session {
    let engine: StreamEngine
    let client: ClientID
    /// The connection's user, as the engine knows it.
    let caller: Caller
    let encoder: ReplyEncoder
    let metrics: ServerMetrics
    /// The per-user byte rate this connection's lines are held to; nil when unlimited.
    let rateLimiter: ByteRateLimiter?
    let limits: RequestLimits
    let defaultTopK: Int
    /// The connection's queue bound (`RecurdConfiguration.maxQueuedBytes`), which sizes feed pieces.
    let maxQueuedBytes: Int
    /// How many connections are open, for stats.
    let connectionCount: @Sendable () -> Int
    /// The stream used by requests that name none (`StreamName.privateStream(of:tag:)`, or
    /// a handed-over connection's own).
    let privateStream: String
    /// Whether a request may have created the private stream (so closing must end it).
    var usedPrivateStream = false
    /// The live view's tokens, when the daemon serves HTTP.
    let view: ViewAccess?
    /// A cluster node's way to other nodes (`RecurdConfiguration.forwarder`); nil on a peer
    /// link (a forwarded request is never forwarded again).
    let forwarder: (any RequestForwarder)?
    let maxLineLength: Int
    /// A cluster node's counters for `stats` (forwarding or not).
    let clusterStatus: (@Sendable () -> ClusterStatus)?
    /// Links to the peers this connection's requests were forwarded to, by node.
    var links: [String: PeerLink] = [:]

    init(engine: StreamEngine, client: ClientID, privateStream: String, caller: Caller, encoder: ReplyEncoder, metrics: ServerMetrics,
         configuration: RecurdConfiguration, rateLimiter: ByteRateLimiter?, connectionCount: @escaping @Sendable () -> Int,
         forwards: Bool = true) {
        self.engine = engine
        self.client = client
        self.caller = caller
        self.encoder = encoder
        self.metrics = metrics
        self.rateLimiter = rateLimiter
        limits = configuration.requestLimits
        defaultTopK = configuration.engine.defaultTopK
        maxQueuedBytes = configuration.maxQueuedBytes
        self.connectionCount = connectionCount
        self.privateStream = privateStream
        view = configuration.view
        forwarder = forwards ? configuration.forwarder : nil
        clusterStatus = configuration.clusterStatus
        maxLineLength = configuration.maxLineLength
    }

    /// Serves one frame from the connection.
    mutating func serve(_ frame: InboundLine, writer: inout ReplyWriter) async throws {
        let start = ContinuousClock.now  // the line's last byte has been read
        try await pace(frame)
        var feedDone = false
        switch frame {
        case .tooLong(let limit):
            fail(ProtocolError(.tooLong, "the line is longer than the limit of \(limit) bytes; it was skipped up to its end"),
                 id: nil, writer: &writer)
        case .line(let line):
            let parsed = line.withUnsafeReadableBytes { Request.parse(line: $0, limits: limits) }
            switch parsed {
            case .failure(let id, let error):
                fail(error, id: id, writer: &writer)
            case .request(let request):
                let isFeed = if case .feed = request.operation { true } else { false }
                // A cluster node serves the request, or forwards it to the node that serves its
                // stream; while the stream's group is moving (nobody serves it for a moment) it
                // retries, so that a rebalance costs clients a delay, not an error.
                let deadline = ContinuousClock.now + (forwarder?.retryWindow ?? .zero)
                retrying: while true {
                    do {
                        try await execute(request, writer: &writer)
                        feedDone = isFeed
                    } catch let failure as RequestFailure {
                        guard failure.error.code == ErrorCode.moved.rawValue, !failure.partial, let forwarder,
                              let stream = request.operation.namedStream else {
                            fail(failure.error, id: request.id, writer: &writer)
                            break retrying
                        }
                        var refusal = failure.error
                        if let peer = forwarder.peer(for: stream) {
                            do {
                                if try await forward(line, to: peer, writer: &writer) {
                                    metrics.forwards.increment()
                                    forwarder.forwarded()
                                    feedDone = isFeed
                                    break retrying
                                }
                                refusal.message += "; \(peer) does not serve it either (it is moving)"
                            } catch let error as PeerLinkError where error.sent {
                                // The peer may have executed it: never again, the client decides (info).
                                let lost = ProtocolError(.internal, "the link to \(peer), which serves stream '\(stream)', broke before its reply was complete (\(error.description)); the request may or may not have taken effect: ask for the stream's info")
                                fail(lost, id: request.id, writer: &writer)
                                break retrying
                            } catch {
                                refusal.message += "; forwarding it to \(peer) failed: \(error)"
                            }
                        }
                        if ContinuousClock.now < deadline {
                            try await Task.sleep(for: .milliseconds(50))
                            continue retrying
                        }
                        fail(refusal, id: request.id, writer: &writer)
                    }
                    break retrying
                }
                if isFeed { metrics.feeds.increment() }
            }
        }
        try await writer.flush()
        if feedDone { metrics.feedDone(since: start) }
    }

    /// Writes an error reply and counts it under its code.
    private func fail(_ error: ProtocolError, id: JSONValue?, writer: inout ReplyWriter) {
        metrics.error(error)
        encoder.error(error, id: id, into: &writer.buffer)
    }

    /// Waits until the user's byte rate allows this line (its bytes and newline; a skipped
    /// over-long line counts as the limit). Meanwhile the connection is not read.
    private func pace(_ frame: InboundLine) async throws {
        guard let rateLimiter else { return }
        let bytes: Int
        switch frame {
        case .tooLong(let limit): bytes = limit
        case .line(let line): bytes = line.readableBytes + 1
        }
        let wait = rateLimiter.reserve(bytes, for: caller.uid)
        if wait > 0 { try await Task.sleep(for: .seconds(wait)) }
    }

    /// A request that failed after it was parsed; kept apart from write failures, which end
    /// the connection.
    struct RequestFailure: Error {
        var error: ProtocolError
        /// Part of the request took effect before the failure (a long feed's first pieces):
        /// it cannot be forwarded whole.
        var partial = false
    }

    /// Sends the request's line to the node that serves its stream and relays its replies;
    /// false, with nothing relayed, when that node refused it with `moved` (its group is moving).
    private mutating func forward(_ line: ByteBuffer, to peer: PeerAddress, writer: inout ReplyWriter) async throws -> Bool {
        let link: PeerLink
        if let open = links[peer.node], open.peer == peer {
            link = open
        } else {
            links[peer.node]?.close()
            link = try await PeerLink.connect(to: peer, caller: caller, forwarder: forwarder!, maxLine: maxLineLength,
                                              group: MultiThreadedEventLoopGroup.singleton)
            links[peer.node] = link
        }
        do {
            var first = true
            var refused = false
            try await link.forward(line) { reply in
                if first {
                    first = false
                    if Self.isMovedError(reply) {
                        refused = true
                        return
                    }
                }
                writer.buffer.writeImmutableBuffer(reply)
                writer.buffer.writeString("\n")
                try await writer.flushIfFull()
            }
            return !refused
        } catch {
            link.close()
            links[peer.node] = nil
            throw error
        }
    }

    /// Whether a reply line is a `moved` error (the encoder writes the code first in "error").
    static func isMovedError(_ reply: ByteBuffer) -> Bool {
        guard let value = try? JSONValue.parse(Array(reply.readableBytesView)), let error = value["error"] else { return false }
        return error["code"]?.stringValue == ErrorCode.moved.rawValue
    }

    /// Closes the links to peers (the connection is closing).
    mutating func closeLinks() {
        for link in links.values { link.close() }
        links = [:]
    }

    private mutating func streamName(_ given: String?) -> String {
        if let given { return given }
        usedPrivateStream = true
        return privateStream
    }

    private func engineCall<T>(_ body: () async throws(EngineError) -> T) async throws(RequestFailure) -> T {
        do {
            return try await body()
        } catch {
            throw RequestFailure(error: ProtocolError(error))
        }
    }

    private mutating func execute(_ request: Request, writer: inout ReplyWriter) async throws {
        let id = request.id
        switch request.operation {
        case .feed(let stream, let text, let k, let flush, let selection):
            let units = try Self.units(selection, of: engine.model.config)
            try await feed(stream: streamName(stream), text: text.utf8, k: k ?? defaultTopK, flush: flush, units: units,
                           id: id, writer: &writer)
        case .predict(let stream, let count, let temperature, let k, let seed):
            let name = streamName(stream)
            let tokens = try await engineCall { () async throws(EngineError) in
                try await engine.predict(stream: name, count: count, temperature: temperature, topK: k, seed: seed, client: client)
            }
            encoder.predicted(id: id, stream: name, tokens: tokens, into: &writer.buffer)
        case .reset(let stream):
            let name = streamName(stream)
            try await engineCall { () async throws(EngineError) in try await engine.reset(stream: name, client: client) }
            encoder.done("reset", id: id, stream: name, into: &writer.buffer)
        case .fork(let stream, let newName):
            let name = streamName(stream)
            try await engineCall { () async throws(EngineError) in try await engine.fork(stream: name, into: newName, client: client) }
            encoder.forked(id: id, stream: name, into: newName, into: &writer.buffer)
        case .end(let stream):
            let name = streamName(stream)
            try await engineCall { () async throws(EngineError) in try await engine.end(stream: name, client: client) }
            encoder.done("end", id: id, stream: name, into: &writer.buffer)
        case .info(let stream):
            let name = streamName(stream)
            let info = try await engineCall { () async throws(EngineError) in try await engine.info(stream: name, client: client) }
            encoder.info(id: id, info, into: &writer.buffer)
        case .list:
            // The engine shows only the caller's user's streams (all to an admin); other
            // connections' private streams are theirs alone.
            let visible = await engine.list(client: client).filter {
                !StreamName.isPrivate($0.stream) || $0.stream == privateStream
            }
            encoder.list(id: id, visible, into: &writer.buffer)
        case .stats:
            encoder.stats(id: id, await engine.stats(), connections: connectionCount(), cluster: clusterStatus?(),
                          into: &writer.buffer)
        case .model:
            // The engine's model, which a reload may have replaced since the encoder was made.
            encoder.modelInfo(id: id, model: engine.model, into: &writer.buffer)
        case .view:
            guard let view, let address = view.address else {
                throw RequestFailure(error: ProtocolError(.badValue, "this daemon serves no live view; start recurd with --http ADDRESS (docs/OBSERVABILITY.md)"))
            }
            encoder.view(id: id, address: address, token: view.token(for: caller), uid: caller.uid, admin: caller.actsOnAll,
                         into: &writer.buffer)
        }
    }

    /// The units a feed asks for, as indices (`"all"`: every layer's h, within the bound).
    static func units(_ selection: UnitSelection, of config: ModelConfig) throws(RequestFailure) -> [Int] {
        switch selection {
        case .none: return []
        case .list(let units): return units
        case .all:
            let count = config.layers * config.hiddenSize
            guard count <= StreamEngine.maxUnits else {
                throw RequestFailure(error: ProtocolError(.badValue, "'units':\"all\" would send \(count) values per event (\(config.layers) layers of \(config.hiddenSize)); at most \(StreamEngine.maxUnits): list the units wanted instead"))
            }
            return Array(0..<count)
        }
    }

    /// Bytes of text passed to the engine at once: small enough that events start flowing
    /// early and that one piece's events, encoded, stay within the connection's queue bound
    /// (and 1 MiB): the next piece is submitted only once the client has taken enough of the
    /// replies, so a client that does not read holds at most about one piece of events.
    static func pieceSize(k: Int, units: Int = 0, queueBound: Int = 1 << 20) -> Int {
        let bytesPerEvent = 80 + 40 * k + 16 * units
        return min(4096, max(64, min(1 << 20, queueBound) / bytesPerEvent))
    }

    private func feed(stream: String, text: String.UTF8View, k: Int, flush: Bool, units: [Int], id: JSONValue?,
                      writer: inout ReplyWriter) async throws {
        let quoted = encoder.quoted(stream)
        let piece = Self.pieceSize(k: k, units: units.count, queueBound: maxQueuedBytes)
        var start = 0
        var absorbed = 0
        var offset: Int? = nil
        repeat {
            let end = min(start + piece, text.count)
            let chunk = Array(text[text.index(text.startIndex, offsetBy: start)..<text.index(text.startIndex, offsetBy: end)])
            let last = end == text.count
            let events: [TokenEvent]
            do {
                events = try await engine.feed(stream: stream, text: chunk, topK: k, flush: flush && last, units: units, client: client)
            } catch {
                var failure = ProtocolError(error)
                if absorbed > 0 {
                    failure.message += " (the first \(absorbed) tokens of this feed were absorbed and sent before the error)"
                }
                throw RequestFailure(error: failure, partial: start > 0)
            }
            for event in events {
                encoder.event(event, id: id, quotedStream: quoted, into: &writer.buffer)
                try await writer.flushIfFull()
            }
            absorbed += events.count
            if let lastEvent = events.last { offset = lastEvent.offset }
            // The last piece's events go out with the done reply, in one write (serve flushes).
            if !last { try await writer.flush() }
            start = end
        } while start < text.count
        if offset == nil {
            // No token completed (an empty text, or a word held back): report where the stream stands.
            offset = try? await engine.info(stream: stream, client: client).offset
        }
        encoder.feedDone(id: id, stream: stream, tokens: absorbed, offset: offset, into: &writer.buffer)
    }

    /// Ends the private stream if a request may have created it (the connection is closing).
    mutating func endPrivateStream() async {
        guard usedPrivateStream else { return }
        usedPrivateStream = false
        do {
            try await engine.end(stream: privateStream, client: client)
        } catch {
            // Already gone (never created, expired or evicted): nothing to clean up.
        }
    }
}
