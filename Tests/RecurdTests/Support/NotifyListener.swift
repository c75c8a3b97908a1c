import Foundation
import RecurTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket standing in for systemd's $NOTIFY_SOCKET: what recurd sends with
/// sd_notify arrives here, one message per datagram, e.g. "READY=1\nSTATUS=serving ...".
final class NotifyListener {
    let path: String
    private let fd: Int32
    private var pending: [String] = []

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket(): \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            path.utf8CString.withUnsafeBytes { raw.copyMemory(from: $0) }
        }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard status == 0 else { throw TestFailure("bind(\(path)): \(String(cString: strerror(errno)))") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The environment that points a child at this listener.
    var environment: [String: String] { ["NOTIFY_SOCKET": path] }

    /// The next message, or nil when none arrives within `timeout` seconds.
    func next(timeout: Double) -> String? {
        if !pending.isEmpty { return pending.removeFirst() }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(timeout * 1000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n], as: UTF8.self)
    }

    /// Messages until one satisfies `condition` (returned), skipping the others; throws after
    /// `timeout` seconds, listing what did arrive.
    @discardableResult
    func waitFor(_ what: String, timeout: Double = 20, _ condition: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var seen: [String] = []
        while Date() < deadline {
            guard let message = next(timeout: max(0.01, deadline.timeIntervalSinceNow)) else { continue }
            if condition(message) { return message }
            seen.append(message)
        }
        throw TestFailure("no notification with \(what) within \(timeout) s; got: \(seen.suffix(8))")
    }

    /// Every message arriving within `seconds`.
    func collect(for seconds: Double) -> [String] {
        let deadline = Date().addingTimeInterval(seconds)
        var all: [String] = []
        while Date() < deadline {
            if let message = next(timeout: max(0.01, deadline.timeIntervalSinceNow)) { all.append(message) }
        }
        return all
    }
}

/// Model files for reload tests, made from the committed ones.
enum ModelFiles {
    /// A copy of `source` whose parameters differ slightly (the low byte of every float in the
    /// last quarter of the data flipped): the same vocabulary and shapes, other predictions.
    static func perturbedCopy(of source: URL, to destination: URL) throws {
        var bytes = [UInt8](try Data(contentsOf: source))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        let dataStart = 8 + headerLength
        let floats = (bytes.count - dataStart) / 4
        for k in (floats * 3 / 4)..<floats { bytes[dataStart + 4 * k] ^= 0x5A }
        try Data(bytes).write(to: destination)
    }
}
