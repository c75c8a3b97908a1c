import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the framing layer hands to a connection: a complete line, or word that one was too long.
public enum InboundLine: Sendable, Equatable {
    /// One line without its "\n" (and without a "\r" before it). Never empty.
    case line(ByteBuffer)
    /// A line exceeded `limit` bytes; everything up to its newline is being skipped.
    case tooLong(limit: Int)
}

/// Splits a byte stream on "\n" into lines of at most `maxLength` bytes (a "\r" before the
/// newline is dropped, so "\r\n" clients work). A longer line produces one `.tooLong` as soon
/// as it is known to be too long, and its bytes are discarded up to and including its
/// newline without being buffered, so a client cannot make the daemon hold more than about
/// `maxLength` bytes per connection. Blank lines are skipped. At end of input, a final line
/// without a newline still counts.
public struct LineFrameDecoder: ByteToMessageDecoder {
    /// What the decoder hands on.
    public typealias InboundOut = InboundLine

    /// The longest line accepted, in bytes, not counting the line ending.
    public let maxLength: Int
    /// How many readable bytes are already known to hold no newline (saves rescanning them).
    private var scanned = 0
    /// True while skipping the rest of an over-long line.
    private(set) var discarding = false

    /// - Precondition: `maxLength` is at least 1.
    public init(maxLength: Int) {
        precondition(maxLength >= 1, "maximum line length \(maxLength) must be at least 1")
        self.maxLength = maxLength
    }

    /// A decoder resuming another's work (a connection handed over across a restart): when
    /// `discarding`, the bytes up to the next newline belong to an over-long line already reported.
    init(maxLength: Int, discarding: Bool) {
        self.init(maxLength: maxLength)
        self.discarding = discarding
    }

    /// Emits the next complete line (or too-long notice) from `buffer`.
    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = nextFrame(&buffer) else { return .needMoreData }
        if let frame { context.fireChannelRead(wrapInboundOut(frame)) }
        return .continue
    }

    /// At end of input, emits the remaining lines and a final line without a newline.
    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if let frame = nextFrame(&buffer) {
            if let frame { context.fireChannelRead(wrapInboundOut(frame)) }
            return .continue
        }
        if let frame = finalFrame(&buffer) { context.fireChannelRead(wrapInboundOut(frame)) }
        return .needMoreData
    }

    /// At end of input, once `nextFrame` finds no newline: what remains is an unterminated last
    /// line (or the tail of a skipped one). Consumes the buffer.
    mutating func finalFrame(_ buffer: inout ByteBuffer) -> InboundLine? {
        let rest = buffer.readSlice(length: buffer.readableBytes)!
        scanned = 0
        if discarding {
            discarding = false
            return nil
        }
        guard let line = Self.trimmed(rest) else { return nil }
        // Up to maxLength + 1 bytes wait for a newline (room for a "\r"); without one, the
        // extra byte makes the line too long.
        return line.readableBytes > maxLength ? .tooLong(limit: maxLength) : .line(line)
    }

    /// The next frame: nil when more bytes are needed, `.some(nil)` when bytes were consumed
    /// without producing a frame (a blank line, the end of a skipped line).
    mutating func nextFrame(_ buffer: inout ByteBuffer) -> InboundLine?? {
        let readable = buffer.readableBytes
        let newline: Int? = buffer.withUnsafeReadableBytes { raw in
            guard scanned < raw.count, let base = raw.baseAddress else { return nil }
            guard let hit = memchr(base + scanned, 0x0A, raw.count - scanned) else { return nil }
            return base.distance(to: UnsafeRawPointer(hit))
        }
        guard let newline else {
            guard readable > 0 else { return nil }
            if discarding {
                buffer.moveReaderIndex(forwardBy: readable)
                scanned = 0
                return .some(nil)
            }
            // One extra byte is allowed for a "\r" that may precede the newline.
            if readable > maxLength + 1 {
                buffer.moveReaderIndex(forwardBy: readable)
                scanned = 0
                discarding = true
                return .some(.tooLong(limit: maxLength))
            }
            scanned = readable
            return nil
        }
        scanned = 0
        let line = buffer.readSlice(length: newline)!
        buffer.moveReaderIndex(forwardBy: 1)
        if discarding {
            discarding = false
            return .some(nil)
        }
        guard let trimmed = Self.trimmed(line) else { return .some(nil) }
        if trimmed.readableBytes > maxLength { return .some(.tooLong(limit: maxLength)) }
        return .some(.line(trimmed))
    }

    /// The line without a trailing "\r"; nil when nothing but white space is left.
    static func trimmed(_ line: ByteBuffer) -> ByteBuffer? {
        var line = line
        if line.readableBytesView.last == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        let blank = line.readableBytesView.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
        return blank ? nil : line
    }
}
