import Hummingbird
import HummingbirdCore
import NIOCore
import RecurCore
import RecurEngine
import RecurServer
import ServiceLifecycle
import Synchronization

/// The live view (docs/OBSERVABILITY.md, "Live view"): `GET /` serves the page, `GET /streams`
/// the streams the viewer may see, `GET /model` the model, and `GET /events?stream=S` a
/// stream's token events as Server-Sent Events, each `data:` line the protocol's event JSON
/// (with `units` when asked). Every one of them needs a token (`ViewAccess`); the token's user
/// sees what it would see over the Unix socket.
final class LiveView: Sendable {
    let engine: StreamEngine
    let access: ViewAccess
    let metrics: RecurdMetrics
    /// Events held for one watcher before it is cut off (`StreamWatch`).
    let watchCapacity: Int
    /// How often an idle event stream writes a comment, to notice a viewer that went away.
    let heartbeatInterval: Duration
    /// How often an event stream takes its watcher's events while they come (`send`).
    let frameInterval: Duration
    private let clients = Mutex<ClientID>(LiveView.firstClient)
    private let watchers = Mutex(0)

    /// HTTP clients get engine client ids from here up, far from the socket's connection numbers.
    static let firstClient: ClientID = 1 << 62
    /// The cookie the page's token is kept in after the first load.
    static let cookie = "recurd_view"

    init(engine: StreamEngine, access: ViewAccess, metrics: RecurdMetrics, watchCapacity: Int = 1024,
         heartbeatInterval: Duration = .seconds(15), frameInterval: Duration = .milliseconds(25)) {
        self.engine = engine
        self.access = access
        self.metrics = metrics
        self.watchCapacity = watchCapacity
        self.heartbeatInterval = heartbeatInterval
        self.frameInterval = frameInterval
    }

    func addRoutes(to router: Router<HTTPContext>) {
        router.get("/") { request, _ in try await self.page(request) }
        router.get("streams") { request, _ in try await self.streams(request) }
        router.get("model") { request, _ in try await self.model(request) }
        router.get("events") { request, context in try await self.events(request, channel: context.channel) }
    }

    // MARK: Access

    /// Who the request is: its token from `Authorization: Bearer`, the cookie, or `?token=`.
    enum Credential {
        case caller(Caller, token: String, inQuery: Bool)
        case none
        case wrong
    }

    func credential(of request: Request) -> Credential {
        var presented: (String, Bool)?
        if let header = request.headers[.authorization], header.hasPrefix("Bearer ") {
            presented = (String(header.dropFirst(7)), false)
        } else if let cookies = request.headers[.cookie],
                  let value = cookies.split(separator: ";").lazy.map({ $0.trimmingCharacters(in: .whitespaces) })
                      .first(where: { $0.hasPrefix(Self.cookie + "=") }) {
            presented = (String(value.dropFirst(Self.cookie.count + 1)), false)
        } else if let query = request.uri.queryParameters["token"] {
            presented = (String(query), true)
        }
        guard let (token, inQuery) = presented else { return .none }
        guard let caller = access.caller(forToken: token) else { return .wrong }
        return .caller(caller, token: token, inQuery: inQuery)
    }

    /// The caller, or the refusal to send.
    func authenticate(_ request: Request) throws(Refusal) -> (Caller, String, Bool) {
        switch credential(of: request) {
        case .caller(let caller, let token, let inQuery): return (caller, token, inQuery)
        case .none:
            throw Refusal(status: .unauthorized, "This page shows stream text and needs a token: open the URL 'recur view' prints, or add ?token= with the token from the daemon's token file (docs/OBSERVABILITY.md, \"Live view\"). Only /metrics answers without one.")
        case .wrong:
            throw Refusal(status: .forbidden, "This token is not valid for this daemon (tokens change when recurd restarts): run 'recur view' again.")
        }
    }

    /// A refused request: a status and a short text body.
    struct Refusal: Error {
        var status: HTTPResponse.Status
        var message: String
        init(status: HTTPResponse.Status, _ message: String) {
            self.status = status
            self.message = message
        }

        var response: Response {
            Response(status: status, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: message + "\n")))
        }
    }

    /// Runs `body` as a fresh engine client identified as `caller`, forgotten afterwards.
    private func asClient<T>(_ caller: Caller, _ body: (ClientID) async throws -> T) async rethrows -> T {
        let id = clients.withLock { next in
            defer { next += 1 }
            return next
        }
        engine.identify(client: id, as: caller)
        defer { engine.disconnect(client: id) }
        return try await body(id)
    }

    private func refusing(_ request: Request, _ serve: (Caller, String, Bool) async throws -> Response) async throws -> Response {
        let caller: Caller, token: String, inQuery: Bool
        do {
            (caller, token, inQuery) = try authenticate(request)
        } catch {
            return error.response
        }
        do {
            return try await serve(caller, token, inQuery)
        } catch let refusal as Refusal {
            return refusal.response
        }
    }

    private static func json(_ body: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                 body: ResponseBody(byteBuffer: body))
    }

    // MARK: Routes

    /// The page; a token in the query is moved into a cookie (HttpOnly, SameSite=Strict), which
    /// the page's own requests then carry, and the page drops it from the address bar.
    func page(_ request: Request) async throws -> Response {
        try await refusing(request) { _, token, inQuery in
            var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                                       .contentSecurityPolicy: "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
                                       HTTPFields.Element.Name("X-Frame-Options")!: "DENY", HTTPFields.Element.Name("Referrer-Policy")!: "no-referrer"]
            if inQuery { headers[.setCookie] = "\(Self.cookie)=\(token); Path=/; HttpOnly; SameSite=Strict" }
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: LiveViewPage.html)))
        }
    }

    /// `{"op":"list","streams":[...]}` of the streams the token's user may see (other
    /// connections' private streams never).
    func streams(_ request: Request) async throws -> Response {
        try await refusing(request) { caller, _, _ in
            let infos = await asClient(caller) { await engine.list(client: $0) }
            let visible = infos.filter { !StreamName.isConnectionPrivate($0.stream) }
            return Self.json(ProtocolLines(model: engine.model).list(visible))
        }
    }

    /// `{"op":"model",...}`.
    func model(_ request: Request) async throws -> Response {
        try await refusing(request) { _, _, _ in
            let model = engine.model
            return Self.json(ProtocolLines(model: model).model(model))
        }
    }

    /// Server-Sent Events of one stream: first `event: ready` with what is watched, then one
    /// `data:` line per token (the protocol's event JSON), and at the end `event: end` with
    /// why (`overflow`: this watcher fell `buffer` events behind, at most `watchCapacity`, and
    /// was cut off; the browser reconnects; `gone`: the stream left memory; `stopping`).
    func events(_ request: Request, channel: any Channel) async throws -> Response {
        try await refusing(request) { caller, _, _ in
            let query = request.uri.queryParameters
            guard let stream = query["stream"].map(String.init), !stream.isEmpty else {
                throw Refusal(status: .badRequest, "GET /events needs ?stream=NAME.")
            }
            if StreamName.isConnectionPrivate(stream) {
                throw Refusal(status: .forbidden, "Connections' private streams cannot be watched.")
            }
            let k = try Self.integer(query["k"], "k", in: 0...engine.options.maxTopK) ?? 5
            let units = try Self.units(query["units"].map(String.init), config: engine.model.config)
            let capacity = try Self.integer(query["buffer"], "buffer", in: 1...watchCapacity) ?? watchCapacity
            let id = clients.withLock { next in
                defer { next += 1 }
                return next
            }
            engine.identify(client: id, as: caller)
            let watch: StreamWatch
            // Counted while the engine holds it: a watcher cut off is uncounted at once, even
            // while its connection waits for the client to read.
            let counted = watchers.withLock { count in
                count += 1
                return count
            }
            metrics.watching(counted)
            let once = Once()
            let uncount: @Sendable () -> Void = { [self] in
                guard once.take() else { return }
                metrics.watching(watchers.withLock { count in
                    count -= 1
                    return count
                })
            }
            do throws(EngineError) {
                watch = try await engine.watch(stream: stream, topK: k, units: units, capacity: capacity, client: id) { _ in uncount() }
            } catch {
                uncount()
                engine.disconnect(client: id)
                let status: HTTPResponse.Status
                switch error {
                case .permissionDenied: status = .forbidden
                case .unknownStream: status = .notFound
                case .shuttingDown: status = .serviceUnavailable
                case .busy: status = .tooManyRequests
                default: status = .badRequest
                }
                return Self.json(ProtocolLines(model: engine.model).error(error), status: status)
            }
            let lines = ProtocolLines(model: engine.model)
            let ready = "{\"stream\":\(Self.quoted(stream)),\"k\":\(k),\"units\":[\(units.map(String.init).joined(separator: ","))]}"
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                            body: ResponseBody { [self] writer in
                defer {
                    watch.cancel()
                    engine.disconnect(client: id)
                }
                try await writer.write(ByteBuffer(string: "retry: 2000\nevent: ready\ndata: \(ready)\n\n"))
                try await withGracefulShutdownHandler {
                    try await send(watch, lines: lines, to: &writer, over: channel)
                } onGracefulShutdown: {
                    watch.cancel()
                }
                let (reason, message): (String, String) = switch watch.end {
                case .overflow: ("overflow", "this viewer fell \(watch.capacity) events behind and was cut off; events in between are missing")
                case .streamGone(let why): ("gone", why)
                case .cancelled, nil: ("stopping", "the daemon is stopping")
                }
                try await writer.write(ByteBuffer(string: "event: end\ndata: {\"reason\":\"\(reason)\",\"message\":\(Self.quoted(message))}\n\n"))
                try await writer.finish(nil)
            })
        }
    }

    /// Sends `watch`'s events to `writer` until the watch ends: once per frame (`frameInterval`,
    /// 40 a second) it takes every event waiting and writes them in one write, so the engine
    /// and the feeders never wake this task and a fast stream costs one write per frame, not
    /// one per token. While nothing comes the frames grow longer, up to a fifth of a second,
    /// so an idle viewer costs a few wake-ups a second. A viewer that went away is noticed when
    /// its connection closes (checked each frame: a write to a closed socket makes the
    /// kernel's reset close it) or a write fails: on an idle stream, at the next heartbeat (an
    /// SSE comment line). A writer that does not take the writes (a stalled viewer) holds this
    /// task in `write`, its events pile up in the watch, and the engine cuts it off at `capacity`.
    private func send(_ watch: StreamWatch, lines: ProtocolLines, to writer: inout some ResponseBodyWriter,
                      over channel: any Channel) async throws {
        var events: [TokenEvent] = []
        var buffer = ByteBuffer()
        let longest = min(heartbeatInterval, .milliseconds(200))
        var pause = frameInterval, quiet = Duration.zero
        while !Task.isCancelled {
            try? await Task.sleep(for: pause)
            guard channel.isActive else {
                watch.cancel()
                return
            }
            let end = watch.take(swapping: &events)
            buffer.clear()
            if events.isEmpty {
                quiet += pause
                pause = min(pause * 2, longest)
                if quiet >= heartbeatInterval {
                    buffer.writeStaticString(": still here\n\n")
                    quiet = .zero
                }
            } else {
                quiet = .zero
                pause = frameInterval
                for event in events {
                    buffer.writeStaticString("data: ")
                    buffer.writeImmutableBuffer(lines.event(event))
                    buffer.writeStaticString("\n\n")
                }
                events.removeAll(keepingCapacity: true)
            }
            if buffer.readableBytes > 0 { try await writer.write(buffer) }
            if end != nil { return }
        }
    }

    // MARK: Query values

    static func integer(_ value: Substring?, _ name: String, in range: ClosedRange<Int>) throws(Refusal) -> Int? {
        guard let value else { return nil }
        guard let n = Int(value), range.contains(n) else {
            throw Refusal(status: .badRequest, "'\(name)' must be an integer from \(range.lowerBound) to \(range.upperBound).")
        }
        return n
    }

    /// `units=all` (every layer's h, within `StreamEngine.maxUnits`) or `units=3,17`.
    static func units(_ value: String?, config: ModelConfig) throws(Refusal) -> [Int] {
        guard let value, !value.isEmpty else { return [] }
        if value == "all" {
            let count = config.layers * config.hiddenSize
            guard count <= StreamEngine.maxUnits else {
                throw Refusal(status: .badRequest, "units=all would send \(count) values per event; at most \(StreamEngine.maxUnits): list the units wanted.")
            }
            return Array(0..<count)
        }
        var units: [Int] = []
        for item in value.split(separator: ",", omittingEmptySubsequences: false) {
            guard let unit = Int(item), unit >= 0 else {
                throw Refusal(status: .badRequest, "units must be 'all' or non-negative integers separated by commas.")
            }
            units.append(unit)
        }
        return units
    }

    static func quoted(_ text: String) -> String { ProtocolLines.quoted(text) }
}

/// True the first time only.
private final class Once: Sendable {
    private let taken = Mutex(false)

    func take() -> Bool {
        taken.withLock { taken in
            defer { taken = true }
            return !taken
        }
    }
}
