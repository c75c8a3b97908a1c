import NIOCore

/// The framing the socket server puts in front of every connection, for code outside the
/// server that must frame exactly as it does (the protocol fuzzer, tests).
public enum LineFraming {
    /// A handler that frames inbound bytes into `InboundLine`s of at most `maxLength` bytes,
    /// starting with `resuming` (what a handed-over connection left unframed), and that leaves
    /// its unframed input in `box` when it sees a `HandoverEvent`.
    public static func handler(maxLength: Int, resuming: UnframedInput? = nil,
                               box: HandoverBox = HandoverBox()) -> any ChannelHandler {
        LineFramingHandler(maxLength: maxLength, resuming: resuming, box: box)
    }
}
