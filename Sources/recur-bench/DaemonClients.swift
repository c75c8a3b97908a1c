import Foundation
import RecurSocketPath
#if canImport(Glibc)
import Glibc
#endif

/// Closed-loop clients of a running recurd over its Unix socket, for the latency and
/// concurrency figures: each client sends a feed, reads its events until the feed's done
/// reply, then sends the next. All clients run on one thread with poll(2).
struct DaemonClients {
    struct Result {
        var tokens = 0
        var errors = 0
        var disconnects = 0
        var seconds = 0.0
        /// Round-trip time of every feed, in microseconds.
        var latencies: [Double] = []
    }

    let socketPath: String
    let text: [UInt8]

    /// Connects `clients` sockets, then has each send `feeds` feeds of `chunk` bytes of `text`
    /// (successive slices, wrapping around) to its own stream (the first client's is `stream`
    /// when given), and waits for every reply.
    func run(clients: Int, feeds: Int, chunk: Int, k: Int, stream: String? = nil) throws -> Result {
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for _ in 0..<clients { fds.append(try connectUnix(socketPath)) }
        var result = Result()
        var sent = [Int](repeating: 0, count: clients)
        var position = [Int](repeating: 0, count: clients)
        var started = [Double](repeating: 0, count: clients)
        var buffers = [[UInt8]](repeating: [], count: clients)
        var open = [Bool](repeating: true, count: clients)
        let run = UInt64.random(in: 0..<1_000_000_000)
        func send(_ i: Int) {
            var piece: [UInt8] = []
            while piece.count < chunk {
                let take = min(chunk - piece.count, text.count - position[i])
                piece += text[position[i]..<(position[i] + take)]
                position[i] = (position[i] + take) % text.count
            }
            let body = String(decoding: piece, as: UTF8.self)
            let escaped = body.unicodeScalars.map { s -> String in
                switch s {
                case "\"": return "\\\""
                case "\\": return "\\\\"
                case "\n": return "\\n"
                default: return s.value < 0x20 ? String(format: "\\u%04x", s.value) : String(s)
                }
            }.joined()
            let name = i == 0 ? stream ?? "bench-\(run)-\(i)" : "bench-\(run)-\(i)"
            let line = Array("{\"op\":\"feed\",\"stream\":\"\(name)\",\"k\":\(k),\"text\":\"\(escaped)\"}\n".utf8)
            started[i] = now()
            var off = 0
            while off < line.count {
                let n = line[off...].withUnsafeBytes { write(fds[i], $0.baseAddress, $0.count) }
                if n <= 0 { open[i] = false; result.disconnects += 1; return }
                off += n
            }
            sent[i] += 1
        }
        let t0 = now()
        for i in 0..<clients { send(i) }
        var remaining = clients
        var pollFDs = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var chunkBuffer = [UInt8](repeating: 0, count: 65536)
        while remaining > 0 {
            let n = poll(&pollFDs, nfds_t(pollFDs.count), 30_000)
            if n <= 0 { throw BenchError("no reply from recurd for 30 s (\(remaining) clients waiting)") }
            for i in 0..<clients where open[i] && pollFDs[i].revents != 0 {
                let got = chunkBuffer.withUnsafeMutableBytes { read(fds[i], $0.baseAddress, $0.count) }
                if got <= 0 {
                    open[i] = false; result.disconnects += 1; remaining -= 1
                    pollFDs[i].fd = -1
                    continue
                }
                buffers[i] += chunkBuffer[0..<got]
                while let nl = buffers[i].firstIndex(of: 10) {
                    let line = buffers[i][..<nl]
                    buffers[i].removeSubrange(...nl)
                    if contains(line, "\"error\"") { result.errors += 1 }
                    if contains(line, "\"offset\"") && !contains(line, "\"done\"") { result.tokens += 1 }
                    if contains(line, "\"done\"") || contains(line, "\"error\"") {
                        result.latencies.append((now() - started[i]) * 1e6)
                        if sent[i] < feeds { send(i) } else { remaining -= 1; pollFDs[i].fd = -1 }
                    }
                }
            }
        }
        result.seconds = now() - t0
        return result
    }

    private func contains(_ line: ArraySlice<UInt8>, _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard line.count >= n.count else { return false }
        var i = line.startIndex
        while i + n.count <= line.endIndex {
            if line[i] == n[0] && line[i..<(i + n.count)].elementsEqual(n) { return true }
            i += 1
        }
        return false
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func connectUnix(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket(): \(String(cString: strerror(errno)))") }
    guard let ok = UnixSocketAddress.withAddress(of: path, { connect(fd, $0, $1) }) else {
        close(fd)
        throw BenchError("socket path too long: \(path)")
    }
    guard ok == 0 else {
        let message = String(cString: strerror(errno))
        close(fd)
        throw BenchError("cannot connect to \(path): \(message)")
    }
    return fd
}
