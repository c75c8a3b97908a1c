/// Simple properties of a text that Karpathy, Johnson & Fei-Fei (2015) found single LSTM cells
/// tracking. Each gives one value per token, taken at the token's first character.
public enum TextFeature: String, Sendable, CaseIterable {
    /// 1 from an opening `"` through the character before its closing `"`, else 0.
    case insideQuotes = "inside quotes"
    /// 1 while at least one `(`, `[` or `{` is open (the opening bracket counts as inside, the
    /// closing one as outside), else 0.
    case insideBrackets = "inside brackets"
    /// Characters since the last newline (the newline itself is 0).
    case linePosition = "position in the line"
    /// 1 on a letter or digit that follows anything else (or starts the text), else 0.
    case wordStart = "start of a word"

    /// The feature's value for each of `pieces` (the tokens' texts, in order).
    public func values(_ pieces: [String]) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(pieces.count)
        var quoted = false, depth = 0, column = 0, previousWordy = false
        for piece in pieces {
            var first: Float?
            for ch in piece.unicodeScalars {
                let wordy = ch.properties.isAlphabetic || ("0"..."9").contains(ch)
                switch ch {
                case "\"": quoted.toggle()
                case "(", "[", "{": depth += 1
                case ")", "]", "}": depth = max(0, depth - 1)
                default: break
                }
                column = ch == "\n" ? 0 : column + 1
                if first == nil {
                    switch self {
                    case .insideQuotes: first = quoted ? 1 : 0
                    case .insideBrackets: first = depth > 0 ? 1 : 0
                    case .linePosition: first = Float(ch == "\n" ? 0 : column - 1)
                    case .wordStart: first = wordy && !previousWordy ? 1 : 0
                    }
                }
                previousWordy = wordy
            }
            out.append(first ?? 0)
        }
        return out
    }
}
