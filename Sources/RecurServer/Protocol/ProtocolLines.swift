import NIOCore
import RecurCore
import RecurEngine

/// The protocol's JSON lines for other surfaces (the live view's Server-Sent Events and its
/// stream list): the same objects the socket sends, each without its newline.
public struct ProtocolLines: Sendable {
    private let encoder: ReplyEncoder

    /// Lines for `model`'s vocabulary (which a reloaded model shares).
    public init(model: Model) { encoder = ReplyEncoder(model: model) }

    /// A token event, as a feed's (`{"stream":..,"offset":..,"token":..,"tid":..,...}`).
    public func event(_ event: TokenEvent) -> ByteBuffer {
        var buffer = ByteBuffer()
        encoder.event(event, id: nil, quotedStream: encoder.quoted(event.stream), into: &buffer)
        return Self.trimmed(buffer)
    }

    /// The reply to `list` for these streams.
    public func list(_ infos: [StreamInfo]) -> ByteBuffer {
        var buffer = ByteBuffer()
        encoder.list(id: nil, infos, into: &buffer)
        return Self.trimmed(buffer)
    }

    /// The reply to `model`.
    public func model(_ model: Model) -> ByteBuffer {
        var buffer = ByteBuffer()
        encoder.modelInfo(id: nil, model: model, into: &buffer)
        return Self.trimmed(buffer)
    }

    /// An error object (`{"error":{"code":..,"message":..}}`).
    public func error(_ error: EngineError) -> ByteBuffer {
        var buffer = ByteBuffer()
        encoder.error(ProtocolError(error), id: nil, into: &buffer)
        return Self.trimmed(buffer)
    }

    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        var buffer = ByteBuffer()
        buffer.writeJSONString(text)
        return String(buffer: buffer)
    }

    private static func trimmed(_ line: ByteBuffer) -> ByteBuffer {
        var line = line
        line.moveWriterIndex(to: line.writerIndex - 1)  // the newline
        return line
    }
}

extension StreamName {
    /// Whether `name` is a connection's private stream, which no other client may see.
    public static func isConnectionPrivate(_ name: String) -> Bool { isPrivate(name) }
}
