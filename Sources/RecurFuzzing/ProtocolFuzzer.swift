import NIOCore
import NIOEmbedded
import RecurCore
import RecurServer

/// One fuzz input through the daemon's request path, as a connection would see it: the bytes
/// arrive in chunks at the server's own framing handler (`LineFraming.handler`, in a real NIO
/// pipeline, end of input included), and every line it frames is parsed into a request
/// (`Request.parse`: UTF-8 check, JSON parser, field checks).
///
/// Input layout: byte 0 picks the line limit (16...1036 bytes); byte 1's low six bits the
/// chunk size (1...64) and its top two bits a handover point (none, or after a quarter, half or
/// three quarters of the input: the connection is handed to a new handler, as across
/// `systemctl restart`); the rest is what the client sends. A broken invariant is a crash,
/// which is what a fuzzer looks for: a framed line longer than the limit, empty or holding a
/// newline, more bytes framed than were sent, a channel error, or a handover that changes the
/// frames.
public enum ProtocolFuzzer {
    /// The request bounds the daemon uses by default.
    static let limits = RequestLimits(maxTopK: 64, maxPredict: 10_000)

    /// Runs one input; returns how many frames (lines and too-long notices) came out (for tests).
    @discardableResult
    public static func run(_ data: UnsafeRawBufferPointer) -> Int {
        guard data.count >= 2 else { return 0 }
        let maxLength = 16 + Int(data[0]) * 4
        let chunkSize = 1 + Int(data[1]) % 64
        let quarter = Int(data[1]) >> 6
        let input = Array(data[2...])

        let frames = frame(input, maxLength: maxLength, chunkSize: chunkSize, handoverAt: nil)
        if quarter > 0 {
            let handedOver = frame(input, maxLength: maxLength, chunkSize: chunkSize, handoverAt: input.count * quarter / 4)
            precondition(handedOver == frames, "a handover after \(input.count * quarter / 4) of \(input.count) bytes changed the frames: \(frames.count) -> \(handedOver.count)")
        }

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

    /// The frames of `input` sent in chunks and then half-closed; with `handoverAt`, the first
    /// handler is handed over after the chunk that reaches that many bytes and a second one,
    /// resuming its unframed input, takes the rest.
    static func frame(_ input: [UInt8], maxLength: Int, chunkSize: Int, handoverAt: Int?) -> [InboundLine] {
        var frames: [InboundLine] = []
        let box = HandoverBox()
        var channel = EmbeddedChannel(handler: LineFraming.handler(maxLength: maxLength, box: box))
        func collect() {
            while let frame = try! channel.readInbound(as: InboundLine.self) { frames.append(frame) }
        }
        var handover = handoverAt
        var start = 0
        while start < input.count {
            let end = min(start + chunkSize, input.count)
            do {
                try channel.writeInbound(channel.allocator.buffer(bytes: input[start..<end]))
            } catch {
                preconditionFailure("the line framing failed: \(error)")
            }
            collect()
            start = end
            if let point = handover, start >= point {
                handover = nil
                channel.pipeline.fireUserInboundEventTriggered(HandoverEvent())
                collect()
                guard let left = box.input else { preconditionFailure("a handover left nothing in its box") }
                _ = try? channel.finish()
                channel = EmbeddedChannel(handler: LineFraming.handler(maxLength: maxLength, resuming: left, box: HandoverBox()))
                channel.embeddedEventLoop.run()
                collect()
            }
        }
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        collect()
        do {
            _ = try channel.finish()
        } catch {
            preconditionFailure("closing the channel failed: \(error)")
        }
        collect()
        return frames
    }
}
