import NIOCore
import RecurCore

/// Each token's text, prepared once per model: as a JSON string literal for events, and in
/// the escaped display form for TSV. Char and word tokens are their text; byte tokens are the
/// character when the byte is text on its own (printable ASCII, tab, newline, carriage
/// return), else `\xNN` (`Vocabulary.text(of:)`, as `recur eval --per-token --json` prints them).
struct TokenTable: Sendable {
    /// (V): the token's text as a quoted, escaped JSON string, ready to copy into a reply.
    private let json: [[UInt8]]
    /// (V): the token as `Vocabulary.display` shows it (newline as `\n`, tab as `\t`).
    private let display: [String]
    private let vocabulary: Vocabulary

    init(vocabulary: Vocabulary) {
        self.vocabulary = vocabulary
        var json: [[UInt8]] = []
        json.reserveCapacity(vocabulary.count)
        var buffer = ByteBuffer()
        for id in 0..<Int32(vocabulary.count) {
            buffer.clear()
            buffer.writeJSONString(Self.text(of: id, in: vocabulary))
            json.append(Array(buffer.readableBytesView))
        }
        self.json = json
        display = (0..<Int32(vocabulary.count)).map { vocabulary.display($0) }
    }

    /// The protocol's text of a token (`Vocabulary.text(of:)`).
    static func text(of id: Int32, in vocabulary: Vocabulary) -> String { vocabulary.text(of: id) }

    /// Appends token `id` as a JSON string.
    func writeJSON(_ id: Int32, into buffer: inout ByteBuffer) {
        if id >= 0, Int(id) < json.count {
            buffer.writeBytes(json[Int(id)])
        } else {
            buffer.writeJSONString(vocabulary.display(id))
        }
    }

    /// The token as TSV shows it.
    func display(_ id: Int32) -> String {
        id >= 0 && Int(id) < display.count ? display[Int(id)] : vocabulary.display(id)
    }
}
