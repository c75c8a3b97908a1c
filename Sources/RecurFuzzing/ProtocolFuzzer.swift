import NIOCore
import NIOEmbedded
import RecurServer

/// One fuzz input through the daemon's request path, as a connection would see it: the bytes
/// arrive in chunks at `LineFrameDecoder` (in a real NIO pipeline), and every line it frames
/// is parsed into a request (`Request.parse`: UTF-8 check, JSON parser, field checks).
///
/// Input layout: byte 0 picks the line limit (16...1036 bytes), byte 1 the chunk size (1...64),
/// the rest is what the client sends. A broken invariant is a crash, which is what a fuzzer
/// looks for: a framed line longer than the limit or holding a newline, more bytes framed than
/// were sent, or a channel error.
public enum ProtocolFuzzer {
    /// The request bounds the daemon uses by default.
    static let limits = RequestLimits(maxTopK: 64, maxPredict: 10_000)

    /// Runs one input; returns how many lines were framed (for tests).
    @discardableResult
    public static func run(_ data: UnsafeRawBufferPointer) -> Int {
        guard data.count >= 2 else { return 0 }
        let maxLength = 16 + Int(data[0]) * 4
        let chunkSize = 1 + Int(data[1]) % 64
        let input = UnsafeRawBufferPointer(rebasing: data[2...])

        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maxLength: maxLength)))
        var frames: [InboundLine] = []
        func collect() {
            while let frame = try! channel.readInbound(as: InboundLine.self) { frames.append(frame) }
        }
        var start = 0
        while start < input.count {
            let end = min(start + chunkSize, input.count)
            var chunk = channel.allocator.buffer(capacity: end - start)
            chunk.writeBytes(UnsafeRawBufferPointer(rebasing: input[start..<end]))
            do {
                try channel.writeInbound(chunk)
            } catch {
                preconditionFailure("the line decoder failed: \(error)")
            }
            collect()
            start = end
        }
        do {
            _ = try channel.finish()
        } catch {
            preconditionFailure("closing the channel failed: \(error)")
        }
        collect()

        var framedBytes = 0
        for frame in frames {
            switch frame {
            case .tooLong(let limit):
                precondition(limit == maxLength, "tooLong reports \(limit), the limit is \(maxLength)")
            case .line(let line):
                precondition(line.readableBytes >= 1 && line.readableBytes <= maxLength,
                             "a framed line of \(line.readableBytes) bytes (limit \(maxLength))")
                precondition(!line.readableBytesView.contains(0x0A), "a framed line holds a newline")
                framedBytes += line.readableBytes
                _ = line.withUnsafeReadableBytes { Request.parse(line: $0, limits: limits) }
            }
        }
        precondition(framedBytes <= input.count, "framed \(framedBytes) bytes out of \(input.count)")
        return frames.count
    }
}
