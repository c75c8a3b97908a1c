import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking newline-delimited-JSON client on a Unix stream socket, written against plain
/// system calls as a program in any language would write one, so it shares nothing with the
/// server under test: lines out, lines in, each read bounded by a timeout.
public final class SocketClient {
    /// The connected socket; -1 once `close()` ran.
    public private(set) var fd: Int32
    private var buffer: [UInt8] = []
    private var nextID = 1
    /// Whether the peer closed the connection (or reset it).
    public private(set) var closedByPeer = false
    /// Unsolicited notices (expired, evicted, ended, reset) that arrived during `request`.
    public private(set) var notices: [[String: Any]] = []

    /// Connects to `path`; throws with errno's sentence when nothing listens there (nothing is
    /// left open then).
    public init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket(): \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw TestFailure("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = fd
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            throw TestFailure("connect(\(path)): \(message)")
        }
    }

    deinit { close() }

    /// Closes the connection (both directions); later calls do nothing.
    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends raw bytes, blocking until all are written (a test of framing may send anything).
    public func send(bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TestFailure("send(): \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Sends one line (a newline is appended).
    public func send(line: String) throws { try send(bytes: Array((line + "\n").utf8)) }

    /// Sends one line (a newline is appended).
    public func send(_ line: String) throws { try send(line: line) }

    /// Sends one JSON object as a line.
    public func send(_ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        try send(bytes: Array(data) + [10])
    }

    /// The next line from the peer, without its newline; nil at end of stream (a last line
    /// without a newline is returned first). Throws when no line comes within `timeout` seconds.
    public func readLine(timeout: Double = 20) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            if closedByPeer {
                if buffer.isEmpty { return nil }
                let line = String(decoding: buffer, as: UTF8.self)
                buffer.removeAll()
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else {
                throw TestFailure("no line within \(timeout) s (have \(buffer.count) bytes: \(String(decoding: buffer.prefix(500), as: UTF8.self)))")
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left, 1) * 1000))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if n < 0 && errno == ECONNRESET { closedByPeer = true; continue }
            guard n >= 0 else { throw TestFailure("recv(): \(String(cString: strerror(errno)))") }
            if n == 0 { closedByPeer = true; continue }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// The next line parsed as a JSON object; throws at end of stream.
    public func readObject(timeout: Double = 20) throws -> [String: Any] {
        guard let line = try readLine(timeout: timeout) else { throw TestFailure("the peer closed the connection") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(line)")
        }
        return object
    }

    /// Sends `object` with a fresh "id" and collects its per-token events up to the reply that
    /// ends it (the one echoing the id that is not an event: a result or an error). Notices that
    /// arrive meanwhile go to `notices`.
    public func request(_ object: [String: Any], timeout: Double = 30) throws -> (events: [[String: Any]], reply: [String: Any]) {
        var object = object
        let id = nextID
        nextID += 1
        object["id"] = id
        try send(object)
        var events: [[String: Any]] = []
        while true {
            let message = try readObject(timeout: timeout)
            if message["notice"] != nil {
                notices.append(message)
            } else if Self.isTokenEvent(message) {
                events.append(message)
            } else if (message["id"] as? Int) == id {
                return (events, message)
            } else {
                throw TestFailure("a reply to another request: \(message)")
            }
        }
    }

    /// A per-token event (docs/PROTOCOL.md): {"stream","offset","token","logprob","next"}.
    private static func isTokenEvent(_ message: [String: Any]) -> Bool {
        message["token"] != nil && message["offset"] != nil && message["next"] != nil
    }

    /// Half-closes the sending side: the peer sees end of input but may still answer.
    public func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Makes sends fail with EAGAIN instead of blocking.
    public func setNonBlocking() {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }
}
