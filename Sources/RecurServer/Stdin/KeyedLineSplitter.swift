import RecurCore
/// Splits stdin's bytes into `key<TAB>text` lines for key-field mode, holding at most one
/// line (up to the length limit) between chunks.
struct KeyedLineSplitter {
    /// What one input line became.
    enum Item: Equatable {
        /// Line `line` (from 1) for stream `key`; `text` is what followed the first tab, plus
        /// the newline (absent only for a last line that had none).
        case line(key: String, text: [UInt8], line: Int)
        /// Line `number` has no tab, so no key; it was skipped.
        case missingKey(line: Int)
        /// Line `number` is longer than the limit; it was skipped.
        case tooLong(line: Int, limit: Int)
        /// Line `number`'s key cannot name a stream (`problem` says why); it was skipped.
        case badKey(line: Int, problem: String)
    }

    let maxLength: Int
    private var pending: [UInt8] = []
    private var discarding = false
    private var lineNumber = 0

    init(maxLength: Int) {
        self.maxLength = maxLength
    }

    /// The lines `chunk` completes, in order.
    mutating func push(_ chunk: [UInt8]) -> [Item] {
        var items: [Item] = []
        var start = 0
        while let newline = chunk[start...].firstIndex(of: 0x0A) {
            if discarding {
                discarding = false
            } else if pending.count + (newline - start) > maxLength + 1 {
                lineNumber += 1
                items.append(.tooLong(line: lineNumber, limit: maxLength))
            } else {
                pending.append(contentsOf: chunk[start...newline])
                if let item = finishLine(pending) { items.append(item) }
            }
            pending.removeAll(keepingCapacity: true)
            start = newline + 1
        }
        guard !discarding else { return items }
        if pending.count + (chunk.count - start) > maxLength + 1 {
            lineNumber += 1
            items.append(.tooLong(line: lineNumber, limit: maxLength))
            pending.removeAll()
            discarding = true
        } else {
            pending.append(contentsOf: chunk[start...])
        }
        return items
    }

    /// The last line if the input did not end with a newline.
    mutating func finish() -> [Item] {
        defer { pending.removeAll() }
        guard !discarding, !pending.isEmpty, let item = finishLine(pending) else { return [] }
        return [item]
    }

    /// One line with its newline (if any): key before the first tab, the rest as text.
    private mutating func finishLine(_ line: [UInt8]) -> Item? {
        lineNumber += 1
        var body = line[...]
        if body.last == 0x0A { body = body.dropLast() }
        if body.last == 0x0D { body = body.dropLast() }
        if body.isEmpty { return nil }  // blank lines carry nothing
        guard let tab = body.firstIndex(of: 0x09) else { return .missingKey(line: lineNumber) }
        let keyBytes = Array(body[..<tab])
        guard keyBytes.withUnsafeBytes({ UTF8Validation.firstInvalidOffset($0) }) == nil else {
            return .badKey(line: lineNumber, problem: "its key is not valid UTF-8")
        }
        let key = String(decoding: keyBytes, as: UTF8.self)
        if let problem = Self.problem(with: key) { return .badKey(line: lineNumber, problem: problem) }
        var text = Array(body[(tab + 1)...])
        if line.last == 0x0A { text.append(0x0A) }
        return .line(key: key, text: text, line: lineNumber)
    }

    /// Why `key` cannot name a stream, in stdin's terms, or nil: the rules of `StreamName`
    /// (1...256 bytes, no control characters, no "~" prefix).
    static func problem(with key: String) -> String? {
        let count = key.utf8.count
        if count == 0 { return "its key is empty (the line starts with a tab)" }
        if count > StreamName.maxBytes { return "its key is \(count) bytes long; keys name streams, which are at most \(StreamName.maxBytes) bytes" }
        if let scalar = key.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            let hex = String(scalar.value, radix: 16, uppercase: true)
            return "its key contains the control character U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex); keys are printable text"
        }
        if key.hasPrefix(StreamName.privatePrefix) {
            return "its key starts with '\(StreamName.privatePrefix)', which is reserved for socket connections' private streams"
        }
        return nil
    }
}
