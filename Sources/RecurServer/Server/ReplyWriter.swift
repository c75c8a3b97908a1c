import NIOCore

/// Collects reply lines into a buffer and hands it to the connection in chunks of about
/// `chunkSize` bytes. Each hand-over awaits the connection's writer, which suspends while the
/// socket is not writable: a client that does not read stops its own requests from being
/// served, and the daemon holds at most about one chunk plus NIO's write watermark for it.
struct ReplyWriter {
    /// Bytes gathered before they are handed over mid-request.
    static let chunkSize = 64 * 1024
    /// Bytes a fresh buffer starts with; it grows as a reply needs.
    static let initialCapacity = 1024

    /// The reply bytes not handed over yet.
    var buffer: ByteBuffer
    private let allocator: ByteBufferAllocator
    private let send: @Sendable (ByteBuffer) async throws -> Void

    init(allocator: ByteBufferAllocator = ByteBufferAllocator(), send: @escaping @Sendable (ByteBuffer) async throws -> Void) {
        self.allocator = allocator
        buffer = allocator.buffer(capacity: Self.initialCapacity)
        self.send = send
    }

    /// Hands the gathered bytes over (awaiting back-pressure), if there are any.
    mutating func flush() async throws {
        guard buffer.readableBytes > 0 else { return }
        let chunk = buffer
        buffer = allocator.buffer(capacity: Self.initialCapacity)
        try await send(chunk)
    }

    /// Hands the gathered bytes over once they reach a chunk.
    mutating func flushIfFull() async throws {
        if buffer.readableBytes >= Self.chunkSize { try await flush() }
    }
}
