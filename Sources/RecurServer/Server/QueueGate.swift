import NIOCore

/// Bounds what the daemon holds for one connection (`--max-queued-bytes`): the request lines it
/// has framed but not served yet plus the reply bytes handed to the channel but not yet taken
/// by the socket. While they are over the bound the gate holds the channel's reads, so a client
/// that sends faster than it reads (or never reads) is simply not read: its requests wait in
/// its own socket buffer, in order, and nothing is dropped. Reads resume once the session has
/// served lines or the socket has taken replies.
///
/// It sits right after the line framing. At the end of a connection that the daemon closes
/// (a stop, a refusal) it also drains: `drain(until:)` discards whatever the client still sends
/// until it closes its end, so that closing our end does not reset the connection (on Linux, a
/// socket closed with unread input makes the peer read ECONNRESET instead of end of file).
final class QueueGate: ChannelDuplexHandler {
    typealias InboundIn = InboundLine
    typealias InboundOut = InboundLine
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Bytes the connection may have queued before it stops being read.
    let bound: Int
    private var unserved = 0
    private var unwritten = 0
    private var readHeld = false
    /// Reads are off for good (a stop or handover is finishing the lines already framed).
    private var stopped = false
    /// The client's end closed (end of file or the connection went away).
    private var peerEnded = false
    private var draining: EventLoopPromise<Void>?
    private var context: ChannelHandlerContext?

    init(bound: Int) {
        precondition(bound >= 1, "the queue bound \(bound) must be positive")
        self.bound = bound
    }

    /// Bytes of a frame as the gate counts them (its line and newline; a skipped line is not held).
    static func size(of frame: InboundLine) -> Int {
        switch frame {
        case .line(let line): line.readableBytes + 1
        case .tooLong: 0
        }
    }

    private var over: Bool { unserved + unwritten >= bound }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Draining: the framing is gone and these are raw bytes nobody will serve.
        guard draining == nil else { return }
        unserved += Self.size(of: unwrapInboundIn(data))
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if draining != nil {
            context.read()
        } else {
            context.fireChannelReadComplete()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // While stopped, the framing's own end of input (after a stop) is not the client's.
        if let event = event as? ChannelEvent, event == .inputClosed, !stopped || draining != nil {
            peerEnded = true
            if draining != nil {
                finishDraining()
                return  // the connection's stream of lines has ended already
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        peerEnded = true
        finishDraining()
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if draining != nil {
            context.read()
        } else if stopped {
            return
        } else if over {
            readHeld = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data).readableBytes
        guard bytes > 0 else {
            context.write(data, promise: promise)
            return
        }
        unwritten += bytes
        let written = promise ?? context.eventLoop.makePromise()
        let gate = NIOLoopBound(self, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in
            gate.value.unwritten -= bytes
            gate.value.resumeIfBelow()
        }
        context.write(data, promise: written)
    }

    /// The session served `bytes` (`size(of:)` of a frame it took).
    func served(_ bytes: Int) {
        unserved -= bytes
        resumeIfBelow()
    }

    private func resumeIfBelow() {
        guard readHeld, !stopped, draining == nil, !over, let context else { return }
        readHeld = false
        context.read()
    }

    /// No more reads for requests (a stop or a handover); a held read is dropped.
    func stopReading() {
        stopped = true
        readHeld = false
    }

    /// Discards input until the client closes its end; `promise` succeeds then (or at once
    /// when it already has). The framing must have been removed first.
    func drain(_ promise: EventLoopPromise<Void>) {
        guard !peerEnded, let context else {
            promise.succeed()
            return
        }
        draining = promise
        context.read()
    }

    private func finishDraining() {
        let promise = draining
        draining = nil
        promise?.succeed()
    }
}

extension QueueGate {
    /// The gate as the connection's task uses it, from any thread.
    struct Handle: Sendable {
        let gate: NIOLoopBound<QueueGate>
        let channel: any Channel

        /// Tells the gate that a frame of `bytes` (`QueueGate.size(of:)`) was served.
        func served(_ bytes: Int) {
            guard bytes > 0 else { return }
            let gate = self.gate
            channel.eventLoop.execute { gate.value.served(bytes) }
        }

        /// Closes the connection's output (the client reads end of file after the replies) and
        /// discards what the client still sends until it closes its end, for at most `timeout`.
        /// Closing the socket afterwards then does not reset the connection.
        func closeGracefully(timeout: TimeAmount) async {
            let channel = self.channel
            let gate = self.gate
            guard channel.isActive else { return }
            let drained: EventLoopFuture<Void> = channel.eventLoop.flatSubmit {
                let promise = channel.eventLoop.makePromise(of: Void.self)
                let halfClosed = channel.eventLoop.makePromise(of: Void.self)
                channel.close(mode: .output, promise: halfClosed)
                halfClosed.futureResult.whenComplete { _ in
                    // The framing would swallow the client's end of file once it has finished.
                    let pipeline = channel.pipeline.syncOperations
                    if let framing = try? pipeline.handler(type: LineFramingHandler.self) {
                        pipeline.removeHandler(framing, promise: nil)
                    }
                    try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
                    gate.value.drain(promise)
                }
                let timer = channel.eventLoop.scheduleTask(in: timeout) { promise.succeed() }
                promise.futureResult.whenComplete { _ in timer.cancel() }
                return promise.futureResult
            }
            try? await drained.get()
        }
    }
}
