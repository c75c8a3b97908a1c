import NIOCore
import RecurEngine

/// Events as tab-separated lines, readable the way KenLM's `query` output is:
/// `[key<TAB>]offset<TAB>token<TAB>logprob<TAB>tok:p,tok:p,...`. The token is in display form
/// (`Vocabulary.display`: char and word tokens with newline as `\n` and tab as `\t`, byte
/// tokens as printable ASCII or `\xNN`); the log-probability is natural, with the
/// shortest digits that read back exactly, and `-` for the first token, which has no
/// prediction; candidates' probabilities have four decimals.
struct TSVFormatter: Sendable {
    let tokens: TokenTable

    func write(_ event: TokenEvent, key: String?, into buffer: inout ByteBuffer) {
        if let key {
            buffer.writeString(key)
            buffer.writeInteger(UInt8(ascii: "\t"))
        }
        buffer.writeString(String(event.offset))
        buffer.writeInteger(UInt8(ascii: "\t"))
        buffer.writeString(tokens.display(event.token))
        buffer.writeInteger(UInt8(ascii: "\t"))
        if let lp = event.logprob { buffer.writeString(lp.description) } else { buffer.writeInteger(UInt8(ascii: "-")) }
        buffer.writeInteger(UInt8(ascii: "\t"))
        for (i, candidate) in event.next.enumerated() {
            if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeString(tokens.display(candidate.token))
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeString(Self.fixed4(candidate.probability))
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    /// A probability in [0, 1] with four decimals ("0.0312", "1.0000").
    static func fixed4(_ p: Float) -> String {
        guard p.isFinite else { return "nan" }
        let scaled = Int((Double(max(0, min(1, p))) * 10_000).rounded())
        let fraction = String(scaled % 10_000)
        return "\(scaled / 10_000)." + String(repeating: "0", count: 4 - fraction.count) + fraction
    }
}
