#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unbuffered writes to stderr, which carries diagnostics and the training progress.
enum StandardError {
    static var isTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    static func write(_ text: String) {
        var text = text
        text.withUTF8 { writeAll(STDERR_FILENO, $0) }
    }

    static func writeLine(_ text: String) { write(text + "\n") }
}

/// Buffered writes to stdout, flushed when the buffer fills and on `flush()`. Results go here;
/// a long per-token listing costs one system call per 64 KB, not per line.
final class StandardOutput {
    private var buffer: [UInt8] = []
    private let limit = 1 << 16

    static var isTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    init() { buffer.reserveCapacity(limit) }

    deinit { flush() }

    func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= limit { flush() }
    }

    func write(bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= limit { flush() }
    }

    func writeLine(_ text: String) { write(text + "\n") }

    func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBufferPointer { writeAll(STDOUT_FILENO, $0) }
        buffer.removeAll(keepingCapacity: true)
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#else
private let systemWrite = Darwin.write
#endif

/// Writes every byte, retrying short writes and EINTR; gives up silently on other errors
/// (a closed pipe is not worth a second error message).
private func writeAll(_ fd: Int32, _ bytes: UnsafeBufferPointer<UInt8>) {
    guard var p = bytes.baseAddress else { return }
    var left = bytes.count
    while left > 0 {
        let n = systemWrite(fd, p, left)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        p += n
        left -= n
    }
}
