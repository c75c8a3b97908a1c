import Foundation
import RecurTestSupport
import XCTest

extension ChildProcess {
    /// Waits until recurd logs `HTTP listening on ADDRESS` and returns ADDRESS (the port bound
    /// for port 0).
    func waitForHTTPAddress() throws -> String {
        var bound: String?
        try waitFor("recurd to log the HTTP address") {
            bound = stderrText.split(separator: "\n")
                .compactMap { line in line.range(of: "HTTP listening on ").map { line[$0.upperBound...] } }
                .first.flatMap { $0.split(separator: " ").first.map(String.init) }
            return bound != nil
        }
        return bound!
    }
}

/// A recurd with `--http` on a free loopback port, its bound address and admin token.
struct LiveDaemon {
    let daemon: Daemon
    let address: String
    let adminToken: String

    /// Starts `recurd --http 127.0.0.1:0 ARGS` and reads the address it logged and the token file.
    static func start(_ test: XCTestCase, model: URL = Repository.shakespeareModel, arguments: [String] = [],
                      in directory: URL? = nil) throws -> LiveDaemon {
        let daemon = try Daemon.start(test, model: model, arguments: ["--http", "127.0.0.1:0"] + arguments, in: directory)
        let bound = try daemon.child.waitForHTTPAddress()
        let token = try String(contentsOfFile: daemon.socketPath + ".http-token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return LiveDaemon(daemon: daemon, address: bound, adminToken: token)
    }

    /// `GET path` with `Authorization: Bearer token` (none when nil).
    func get(_ path: String, token: String?) throws -> HTTPResponse {
        try httpGet(address, path, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
    }

    /// `recurd_view_watchers` now.
    func watchers() throws -> Double? {
        sample(try httpGet(address, "/metrics").body, "recurd_view_watchers")
    }

    /// Waits until `count` live-view watchers are attached.
    func waitForWatchers(_ count: Double, timeout: Double = 20) throws {
        try daemon.child.waitFor("\(count) live-view watchers (recurd_view_watchers)", timeout: timeout) {
            (try? watchers()) == count
        }
    }
}

/// Server-Sent Events read from an open `GET /events` connection (a chunked HTTP/1.1 body).
final class EventStreamReader {
    let fd: Int32
    /// Bytes received and not yet parsed.
    private var raw: [UInt8] = []
    /// The body, de-chunked, not yet parsed into events.
    private var body: [UInt8] = []
    /// The response status, once the head arrived.
    private(set) var status: Int?
    /// The last chunk (size 0) arrived: the response is complete.
    private var complete = false

    /// Opens `GET path` with the token; `receiveBuffer` shrinks the socket's receive buffer.
    init(_ live: LiveDaemon, _ path: String, token: String, receiveBuffer: Int32? = nil) throws {
        fd = receiveBuffer == nil ? try connectHTTP(live.address) : try connectTCP(live.address, receiveBuffer: receiveBuffer)
        try sendHTTPGet(fd, path, keepAlive: true, headers: ["Authorization": "Bearer \(token)"])
    }

    deinit { close(fd) }

    /// Sets the socket's receive buffer (a reader that starts reading quickly after stalling).
    func setReceiveBuffer(_ bytes: Int32) {
        var size = bytes
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    /// The next event's `(event name, data)`; nil at the end of the response.
    func next(timeout: Double = 20) throws -> (name: String, data: String)? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            parse()
            if let event = takeEvent() { return event }
            if complete { return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
            guard poll(&pfd, 1, left) > 0 else {
                throw TestFailure("no event within \(timeout) s; have: \(String(decoding: body, as: UTF8.self))")
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { return nil }
            raw += chunk[0..<n]
        }
    }

    /// Moves the head and complete chunks from `raw` into `status` and `body`.
    private func parse() {
        if status == nil {
            guard let end = find([13, 10, 13, 10], in: raw) else { return }
            let head = String(decoding: raw[..<end], as: UTF8.self)
            status = Int(head.split(separator: " ").dropFirst().first ?? "")
            raw.removeSubrange(..<(end + 4))
        }
        while let lineEnd = find([13, 10], in: raw) {
            guard let size = Int(String(decoding: raw[..<lineEnd], as: UTF8.self), radix: 16) else { return }
            guard raw.count >= lineEnd + 2 + size + 2 else { return }
            if size == 0 { complete = true }
            body += raw[(lineEnd + 2)..<(lineEnd + 2 + size)]
            raw.removeSubrange(..<(lineEnd + 2 + size + 2))
        }
    }

    private func takeEvent() -> (name: String, data: String)? {
        while let end = find([10, 10], in: body) {
            let block = String(decoding: body[..<end], as: UTF8.self)
            body.removeSubrange(..<(end + 2))
            var name = "message", data: [String] = []
            for line in block.split(separator: "\n") {
                if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))) }
            }
            if !data.isEmpty { return (name, data.joined(separator: "\n")) }
        }
        return nil
    }

    private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }
}
