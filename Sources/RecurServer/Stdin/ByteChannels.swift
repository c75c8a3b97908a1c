import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// Where the stdin pipeline reads bytes from: chunks in order, nil at the end.
protocol ByteChunkSource: Sendable {
    /// The next chunk (never empty), or nil at end of input or after `stop()`.
    func next() async throws -> [UInt8]?
    /// Makes `next()` return nil soon, even while it waits for input (graceful shutdown).
    func stop()
}

/// Where the stdin pipeline writes: whole buffers, never interleaved with each other.
protocol ByteSink: Sendable {
    func write(_ bytes: ByteBuffer) async throws
}

/// A read or write on a standard stream failed.
struct StandardStreamError: Error, CustomStringConvertible {
    var description: String
}

/// Reads a file descriptor (stdin) on NIO's blocking thread pool, 64 KiB at a time, polling
/// every 200 ms so that `stop()` takes effect even when no input comes (`tail -f` at night).
/// Works for pipes, terminals and regular files alike.
final class FileDescriptorSource: ByteChunkSource {
    let descriptor: Int32
    private let stopped = Locked(false)
    private static let chunkSize = 64 * 1024

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    func stop() {
        stopped.withLock { $0 = true }
    }

    func next() async throws -> [UInt8]? {
        try await NIOThreadPool.singleton.runIfActive { [descriptor, stopped] () throws -> [UInt8]? in
            var buffer = [UInt8](repeating: 0, count: Self.chunkSize)
            while true {
                if stopped.withLock({ $0 }) { return nil }
                var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                let ready = poll(&poller, 1, 200)
                if ready < 0 {
                    if errno == EINTR { continue }
                    throw StandardStreamError(description: "cannot wait for standard input: \(String(cString: strerror(errno)))")
                }
                if ready == 0 { continue }
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    throw StandardStreamError(description: "cannot read standard input: \(String(cString: strerror(errno)))")
                }
                if count == 0 { return nil }
                return Array(buffer[0..<count])
            }
        }
    }
}

/// Writes to a file descriptor (stdout, stderr) on NIO's blocking thread pool, so a slow
/// reader (`| less`) stalls the pipeline rather than a Swift concurrency thread.
final class FileDescriptorSink: ByteSink {
    let descriptor: Int32
    /// Held around each write so two buffers never interleave.
    private let writing = Locked(())

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    func write(_ bytes: ByteBuffer) async throws {
        guard bytes.readableBytes > 0 else { return }
        try await NIOThreadPool.singleton.runIfActive { [descriptor, writing] in
            try writing.withLock { _ in
                try bytes.withUnsafeReadableBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        let n = systemWrite(descriptor, raw.baseAddress! + offset, raw.count - offset)
                        if n < 0 {
                            if errno == EINTR { continue }
                            if errno == EAGAIN {
                                var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                                _ = poll(&poller, 1, 200)
                                continue
                            }
                            throw StandardStreamError(description: "cannot write to descriptor \(descriptor): \(String(cString: strerror(errno)))")
                        }
                        offset += n
                    }
                }
            }
        }
    }
}
