extension Unicode.Scalar {
    /// Whether the scalar changes how the text around it is shown instead of being shown
    /// itself: control characters (C0, DEL, C1), the line and paragraph separators (U+2028,
    /// U+2029), and the bidirectional marks, embeddings, overrides and isolates (U+061C,
    /// U+200E, U+200F, U+202A...U+202E, U+2066...U+2069). A name that is echoed into terminals,
    /// log lines and listings must hold none: U+202E makes "gnp.exe" read as "exe.png", and a
    /// separator starts what looks like a new log line.
    public var altersDisplay: Bool {
        switch value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1
        case 0x2028, 0x2029: true  // line and paragraph separators
        case 0x061C, 0x200E, 0x200F: true  // Arabic letter mark, left-to-right and right-to-left marks
        case 0x202A...0x202E: true  // embeddings, pop, overrides
        case 0x2066...0x2069: true  // isolates
        default: false
        }
    }

    /// `U+202E`, for messages that name a scalar without showing it.
    public var codePointName: String {
        let hex = String(value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}

extension String {
    /// The text with every scalar that `altersDisplay` written as `\u{202E}`, so that a client's
    /// string can be quoted in a message or a log line without acting on it.
    public var escapingDisplayControls: String {
        guard unicodeScalars.contains(where: \.altersDisplay) else { return self }
        var out = ""
        for scalar in unicodeScalars {
            if scalar.altersDisplay {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
