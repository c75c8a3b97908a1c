import Foundation
import RecurTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 response as a test reads it.
struct HTTPResponse {
    var status: Int
    var headers: [String: String]
    var body: String
}

/// `GET path` over a plain socket (`Connection: close`, read to end of file, at most `timeout`
/// seconds), written against system calls so that it shares nothing with the server under test.
/// `address` is `HOST:PORT` (IPv4) or `unix:PATH`, as recurd logs it.
func httpGet(_ address: String, _ path: String, headers: [String: String] = [:], timeout: Double = 20) throws -> HTTPResponse {
    let fd = try connectHTTP(address)
    defer { close(fd) }
    try sendHTTPGet(fd, path, keepAlive: false, headers: headers)
    let received = try readToEndOfFile(fd, timeout: timeout, what: "a complete response from \(address)\(path)")
    return try parseHTTPResponse(received)
}

/// A connection to `address` (`HOST:PORT` or `unix:PATH`); the caller closes it.
func connectHTTP(_ address: String) throws -> Int32 {
    if address.hasPrefix("unix:") {
        let client = try SocketClient(path: String(address.dropFirst(5)))
        return dup(client.fd)
    }
    return try connectTCP(address)
}

/// Sends `GET path`, asking to keep the connection open or to close it after the response.
func sendHTTPGet(_ fd: Int32, _ path: String, keepAlive: Bool, headers: [String: String] = [:]) throws {
    let extra = headers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)\r\n" }.joined()
    let request = Array("GET \(path) HTTP/1.1\r\nHost: recurd\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\(extra)\r\n".utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
        throw TestFailure("sending the request failed: \(String(cString: strerror(errno)))")
    }
}

/// Reads until the peer closes the connection, at most `timeout` seconds.
func readToEndOfFile(_ fd: Int32, timeout: Double, what: String) throws -> [UInt8] {
    var received: [UInt8] = []
    let deadline = Date().addingTimeInterval(timeout)
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let left = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
        guard poll(&pfd, 1, left) > 0 else {
            throw TestFailure("no end of file (\(what)) within \(timeout) s; got: \(String(decoding: received, as: UTF8.self))")
        }
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        if n <= 0 { break }
        received += chunk[0..<n]
    }
    return received
}

/// The status, headers and body of one response.
func parseHTTPResponse(_ received: [UInt8]) throws -> HTTPResponse {
    let text = String(decoding: received, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw TestFailure("not an HTTP response: \(text)") }
    let head = text[..<split.lowerBound].split(separator: "\r\n")
    guard let statusLine = head.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
        throw TestFailure("no status line in: \(text)")
    }
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return HTTPResponse(status: status, headers: headers, body: String(text[split.upperBound...]))
}

/// A TCP connection to `HOST:PORT` (IPv4 numeric host).
/// `receiveBuffer` sets `SO_RCVBUF` before connecting, which bounds the window the peer sees.
func connectTCP(_ address: String, receiveBuffer: Int32? = nil) throws -> Int32 {
    guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
        throw TestFailure("not HOST:PORT: \(address)")
    }
    var sin = sockaddr_in()
    sin.sin_family = sa_family_t(AF_INET)
    sin.sin_port = port.bigEndian
    guard inet_pton(AF_INET, String(address[..<colon]), &sin.sin_addr) == 1 else { throw TestFailure("not an IPv4 host: \(address)") }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
    let status = withUnsafePointer(to: &sin) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard status == 0 else {
        let message = String(cString: strerror(errno))
        close(fd)
        throw TestFailure("connect(\(address)): \(message)")
    }
    return fd
}

/// One sample's value in a Prometheus text exposition: the line `name{labels} value` (or
/// `name value` when `labels` is empty); nil when absent.
func sample(_ exposition: String, _ name: String, _ labels: String = "") -> Double? {
    let key = labels.isEmpty ? name + " " : name + "{" + labels + "} "
    guard let line = exposition.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
    return Double(line.dropFirst(key.count))
}
