extension Vocabulary {
    /// A token as text for JSON (protocol events, `recur eval --per-token --json`): char and
    /// word tokens as what they stand for; a byte token as its character when that byte is
    /// text on its own (printable ASCII, tab, newline or carriage return), else its `\xNN`
    /// escape (a non-ASCII byte is part of a UTF-8 sequence, not a character; other control
    /// bytes are not text). An id outside the vocabulary shows as `display(_:)` does.
    public func text(of id: Int32) -> String {
        guard id >= 0, Int(id) < tokens.count else { return display(id) }
        let token = tokens[Int(id)]
        guard kind == .byte else { return token }
        if let byte = UInt8(token), Self.isTextByte(byte) { return String(UnicodeScalar(byte)) }
        return display(id)
    }

    /// Whether a byte is text on its own: printable ASCII, tab, newline or carriage return.
    public static func isTextByte(_ byte: UInt8) -> Bool {
        (0x20...0x7E).contains(byte) || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}
