import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking newline-delimited-JSON client on a Unix stream socket, as a program in any
/// language would write one: the tests talk to the real daemon through it.
final class SocketClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var nextID = 1
    /// Unsolicited notices (expired, evicted, ended, reset) that arrived during `request`.
    private(set) var notices: [[String: Any]] = []

    /// Connects to `path`; throws with errno's sentence when nothing listens there.
    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket(): \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw TestFailure("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TestFailure("connect(\(path)): \(message)")
        }
    }

    deinit { close(fd) }

    /// Sends raw bytes (a test of framing may send anything).
    func send(bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TestFailure("send(): \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Sends one line (a newline is appended).
    func send(line: String) throws { try send(bytes: Array((line + "\n").utf8)) }

    /// Sends one JSON object as a line.
    func send(_ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        try send(bytes: Array(data) + [10])
    }

    /// The next line from the daemon, without its newline; nil at end of stream.
    func readLine(timeout: Double = 20) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw TestFailure("no line from the daemon within \(timeout) s (have: \(String(decoding: buffer, as: UTF8.self)))") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left, 1) * 1000))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == ECONNRESET { return nil }
            guard n >= 0 else { throw TestFailure("recv(): \(String(cString: strerror(errno)))") }
            if n == 0 {
                if buffer.isEmpty { return nil }
                let line = String(decoding: buffer, as: UTF8.self)
                buffer.removeAll()
                return line
            }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// The next line parsed as a JSON object; throws at end of stream.
    func readObject(timeout: Double = 20) throws -> [String: Any] {
        guard let line = try readLine(timeout: timeout) else { throw TestFailure("the daemon closed the connection") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(line)")
        }
        return object
    }

    /// Sends `object` with a fresh "id" and collects its per-token events up to the reply that
    /// ends it (the one echoing the id that is not an event: a result or an error).
    func request(_ object: [String: Any], timeout: Double = 30) throws -> (events: [[String: Any]], reply: [String: Any]) {
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
            } else if Protocol.isTokenEvent(message) {
                events.append(message)
            } else if (message["id"] as? Int) == id {
                return (events, message)
            } else {
                throw TestFailure("a reply to another request: \(message)")
            }
        }
    }

    /// Half-closes the sending side: the daemon sees end of input but may still answer.
    func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }
}
