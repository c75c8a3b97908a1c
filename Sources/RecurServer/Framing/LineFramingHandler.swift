import NIOCore

/// Asks a connection's `LineFramingHandler` to stop: the caller has turned reading off; the
/// handler hands the unframed bytes it holds to its `HandoverBox` and ends the inbound stream
/// as if the client had half-closed, so the connection's loop finishes the lines it already
/// has and then sees the box (a restart hands the connection to the next process).
public struct HandoverEvent: Sendable {
    /// The event.
    public init() {}
}

/// What a connection left unframed when it was handed over: the bytes of an unfinished line
/// and whether they continue an over-long line being skipped.
public struct UnframedInput: Sendable, Equatable, Codable {
    /// Bytes received after the last complete line.
    public var bytes: [UInt8]
    /// The bytes continue an over-long line that was already reported; skip them up to the newline.
    public var discarding: Bool

    /// Memberwise.
    public init(bytes: [UInt8], discarding: Bool) {
        self.bytes = bytes
        self.discarding = discarding
    }
}

/// Where a `LineFramingHandler` leaves its unframed input at a handover.
public final class HandoverBox: @unchecked Sendable {
    private let state = Locked<UnframedInput?>(nil)

    /// An empty box.
    public init() {}

    /// The input left at a handover; nil when none happened.
    public var input: UnframedInput? { state.withLock { $0 } }

    func put(_ input: UnframedInput) { state.withLock { $0 = input } }
}

/// `LineFrameDecoder` as a channel handler that owns its buffer, so that at a handover
/// (`HandoverEvent`) the bytes of an unfinished line can be taken out and given to the next
/// process, which starts its handler with them (`init(maxLength:resuming:)`).
final class LineFramingHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = InboundLine

    private var decoder: LineFrameDecoder
    private var buffer: ByteBuffer
    private let box: HandoverBox
    private var finished = false

    /// A handler starting with `resuming` (a handed-over connection's input), if any.
    init(maxLength: Int, resuming: UnframedInput? = nil, box: HandoverBox) {
        decoder = LineFrameDecoder(maxLength: maxLength, discarding: resuming?.discarding ?? false)
        buffer = ByteBuffer(bytes: resuming?.bytes ?? [])
        self.box = box
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Resumed bytes may already hold complete lines (a restart hands over the lines a
        // connection had queued). The async channel takes lines in at the end of a read: end one,
        // or they would wait for the client's next bytes.
        if buffer.readableBytes > 0 {
            context.eventLoop.execute {
                self.frame(context: context)
                context.fireChannelReadComplete()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        frame(context: context)
    }

    private func frame(context: ChannelHandlerContext) {
        while !finished, let frame = decoder.nextFrame(&buffer) {
            if let frame { context.fireChannelRead(wrapInboundOut(frame)) }
        }
        buffer.discardReadBytes()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            // End of input: an unterminated last line still counts.
            guard !finished else { return }
            while let frame = decoder.nextFrame(&buffer) {
                if let frame { context.fireChannelRead(wrapInboundOut(frame)) }
            }
            if let last = decoder.finalFrame(&buffer) { context.fireChannelRead(wrapInboundOut(last)) }
            finished = true
            context.fireUserInboundEventTriggered(event)
        case is HandoverEvent:
            guard !finished else { return }
            finished = true
            box.put(UnframedInput(bytes: Array(buffer.readableBytesView), discarding: decoder.discarding))
            buffer.clear()
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }
}
