import Foundation
import RecurCore
import RecurServer
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A blocking Unix-socket client for tests: lines out, lines in, with timeouts, written
/// against plain system calls so it shares nothing with the server under test.
final class TestClient {
    private(set) var fd: Int32
    private var pending: [UInt8] = []
    private(set) var closedByPeer = false

    init(path: String) throws {
        fd = try Self.connected(to: path)
    }

    /// A socket connected to `path`, or an error (with nothing left open).
    private static func connected(to path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestClientError("socket() failed: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw TestClientError("connect to \(path) failed: errno \(code)")
        }
        return fd
    }

    deinit { close() }

    /// Closes the connection (both directions).
    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends raw bytes, blocking until all are written.
    func send(bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestClientError("send failed: errno \(errno)")
            }
            offset += n
        }
    }

    /// Sends `line` and a newline.
    func send(_ line: String) throws {
        try send(bytes: Array((line + "\n").utf8))
    }

    /// Closes the sending side (the server sees end of input but can still reply).
    func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// The next line (without "\n"), or nil when the server closed the connection.
    /// - Throws: on timeout.
    func readLine(timeout: Double = 10) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            if closedByPeer { return nil }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw TestClientError("no complete line within \(timeout) s (have \(pending.count) bytes)") }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(left, 1) * 1000))
            if ready <= 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                closedByPeer = true
            } else if n == 0 {
                closedByPeer = true
            } else {
                pending.append(contentsOf: buffer[0..<n])
            }
        }
    }

    /// The next line parsed as JSON; fails the test when there is none or it is not JSON.
    func readJSON(timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        guard let text = try readLine(timeout: timeout) else {
            XCTFail("the server closed the connection instead of replying", file: file, line: line)
            throw TestClientError("connection closed")
        }
        do {
            return try JSONValue.parse(Array(text.utf8))
        } catch {
            XCTFail("the reply is not JSON: \(text)", file: file, line: line)
            throw error
        }
    }

    /// Sends `request` and returns the next line as JSON.
    func request(_ request: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        try send(request)
        return try readJSON(file: file, line: line)
    }

    /// Reads lines until one satisfies `isLast`, returning all of them (the last included).
    func readUntil(timeout: Double = 30, _ isLast: (JSONValue) -> Bool) throws -> [JSONValue] {
        var lines: [JSONValue] = []
        while true {
            let value = try readJSON(timeout: timeout)
            lines.append(value)
            if isLast(value) { return lines }
        }
    }

    /// Feeds `text` and returns (events, final reply).
    func feed(_ text: String, stream: String? = nil, k: Int? = nil, flush: Bool = false, id: String? = nil) throws -> (events: [JSONValue], reply: JSONValue) {
        var members = ["\"op\":\"feed\"", "\"text\":\(JSONValue.string(text).rendered)"]
        if let stream { members.append("\"stream\":\(JSONValue.string(stream).rendered)") }
        if let k { members.append("\"k\":\(k)") }
        if flush { members.append("\"flush\":true") }
        if let id { members.append("\"id\":\(JSONValue.string(id).rendered)") }
        try send("{" + members.joined(separator: ",") + "}")
        let lines = try readUntil { $0["done"] != nil || $0["error"] != nil }
        return (Array(lines.dropLast()), lines.last!)
    }

    /// Makes sends fail with EAGAIN instead of blocking.
    func setNonBlocking() {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }
}

struct TestClientError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
