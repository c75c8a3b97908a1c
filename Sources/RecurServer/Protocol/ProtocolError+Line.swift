import NIOCore

extension ProtocolError {
    /// The error as a client reads it when no request of its connection is served,
    /// `{"error":{"code":C,"message":M}}` and a newline (the shape of `ReplyEncoder`'s errors).
    public var replyLine: [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"error\":{\"code\":")
        buffer.writeJSONString(code)
        buffer.writeJSONMember("message", string: message)
        buffer.writeStaticString("}}\n")
        return Array(buffer.readableBytesView)
    }
}
