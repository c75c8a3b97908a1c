import Foundation
import RecurTestSupport

/// One runnable example of a markdown document (DEVELOPERS.md, "The docs' examples are tests").
struct DocExample {
    enum Kind {
        /// A shell command of a ```console block (the text after `$ `, with its continuation
        /// lines); its output is what it prints on stdout, then on stderr.
        case command
        /// A request line of a protocol transcript (the text after `> `), sent on the file's one
        /// connection; its output is every line answering it.
        case request
    }

    var kind: Kind
    var text: String
    /// The output the doc shows, one line each.
    var expected: [String]
    /// The 1-based line of the doc where the example starts.
    var line: Int
}

/// The examples of a markdown file, in order, and the blocks it marks as not run.
struct DocExamples {
    var examples: [DocExample] = []
    /// (line, reason) of each block after `<!-- doctest: skip REASON -->`.
    var skipped: [(line: Int, reason: String)] = []

    /// Parses `markdown`. Fenced blocks tagged `console` hold `$ command` lines, each followed by
    /// its output; a command continues on the next line after a trailing `\` and up to the end of
    /// a here-document. Untagged fenced blocks with lines starting with `> ` are transcripts: each
    /// `> request` is followed by the replies. A block right after `<!-- doctest: skip REASON -->`
    /// is not run. Throws for a runnable block with text before its first command or request.
    init(markdown: String, name: String) throws {
        let lines = markdown.components(separatedBy: "\n")
        var skipReason: String?
        var i = 0
        while i < lines.count {
            let line = lines[i]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("<!-- doctest: skip"), trimmed.hasSuffix("-->") {
                skipReason = String(trimmed.dropFirst("<!-- doctest: skip".count).dropLast(3))
                    .trimmingCharacters(in: .whitespaces)
                i += 1
                continue
            }
            guard line.hasPrefix("```") else { i += 1; continue }
            let info = line.dropFirst(3).trimmingCharacters(in: .whitespaces)
            let start = i + 1
            var end = start
            while end < lines.count, lines[end] != "```" { end += 1 }
            let body = Array(lines[start..<min(end, lines.count)])
            i = end + 1
            defer { skipReason = nil }
            let isTranscript = info.isEmpty && body.contains { $0.hasPrefix("> ") }
            guard info == "console" || isTranscript else { continue }
            if let reason = skipReason {
                skipped.append((start, reason))
                continue
            }
            if info == "console" {
                try parseConsole(body, firstLine: start + 1, name: name)
            } else {
                try parseTranscript(body, firstLine: start + 1, name: name)
            }
        }
    }

    private mutating func parseConsole(_ body: [String], firstLine: Int, name: String) throws {
        var j = 0
        while j < body.count {
            guard body[j].hasPrefix("$ ") else {
                throw TestFailure("\(name):\(firstLine + j): a console block's first line must be a `$ ` command, not: \(body[j])")
            }
            let line = firstLine + j
            var command = [String(body[j].dropFirst(2))]
            let heredoc = Self.hereDocumentEnd(of: command[0])
            j += 1
            while j < body.count, command.last!.hasSuffix("\\") || (heredoc != nil && command.last! != heredoc) {
                command.append(body[j])
                j += 1
            }
            var expected: [String] = []
            while j < body.count, !body[j].hasPrefix("$ ") {
                expected.append(body[j])
                j += 1
            }
            examples.append(DocExample(kind: .command, text: command.joined(separator: "\n"), expected: expected, line: line))
        }
    }

    private mutating func parseTranscript(_ body: [String], firstLine: Int, name: String) throws {
        var j = 0
        while j < body.count {
            guard body[j].hasPrefix("> ") else {
                throw TestFailure("\(name):\(firstLine + j): a transcript's first line must be a `> ` request (or mark the block `<!-- doctest: skip REASON -->`), not: \(body[j])")
            }
            let line = firstLine + j
            let request = String(body[j].dropFirst(2))
            j += 1
            var expected: [String] = []
            while j < body.count, !body[j].hasPrefix("> ") {
                expected.append(body[j])
                j += 1
            }
            examples.append(DocExample(kind: .request, text: request, expected: expected, line: line))
        }
    }

    /// The word that ends a here-document started on `line` (`<<'JSON'`, `<<EOF`), or nil.
    static func hereDocumentEnd(of line: String) -> String? {
        guard let range = line.range(of: #"<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?"#, options: .regularExpression) else { return nil }
        return String(line[range]).trimmingCharacters(in: CharacterSet(charactersIn: "<-'\" "))
    }
}

/// How a doc's output is compared with what was printed (DEVELOPERS.md documents the rules).
enum DocOutput {
    /// JSON members whose values differ from run to run: compared by kind only.
    static let varyingMembers: [(pattern: String, template: String)] = [
        (#""(created|last_activity)":"[^"]*""#, #""$1":"<time>""#),
        (#""(uptime|tokens_per_second)":[-+0-9.eE]+"#, #""$1":<number>"#),
        // A private stream's tag is random per daemon start (docs/PROTOCOL.md, Streams).
        (#""~([0-9]+)\.[0-9a-f]{16}""#, #""~$1.<tag>""#),
        // The kernel path is chosen for the CPU at load time (avx512, avx2, scalar).
        (#"\(kernels: [a-z0-9]+\)"#, "(kernels: <path>)"),
    ]

    /// Relative tolerance for numbers with a fraction or exponent.
    static let tolerance = 1e-5

    static func normalized(_ line: String) -> String {
        var line = line
        for member in varyingMembers {
            line = line.replacingOccurrences(of: member.pattern, with: member.template, options: .regularExpression)
        }
        return line
    }

    /// Whether `actual` lines are what the doc's `expected` lines show: a line `...` stands for
    /// any number of lines, `...` inside a line for any text.
    static func matches(_ expected: [String], _ actual: [String]) -> Bool {
        matchLines(expected[...], actual[...])
    }

    private static func matchLines(_ expected: ArraySlice<String>, _ actual: ArraySlice<String>) -> Bool {
        guard let first = expected.first else { return actual.isEmpty }
        if first == "..." {
            return (0...actual.count).contains { matchLines(expected.dropFirst(), actual.dropFirst($0)) }
        }
        guard let line = actual.first, lineMatches(first, line) else { return false }
        return matchLines(expected.dropFirst(), actual.dropFirst())
    }

    private static let piece = try! NSRegularExpression(
        pattern: #"\.\.\.|-?[0-9]+\.[0-9]+(?:[eE][-+]?[0-9]+)?|-?[0-9]+[eE][-+]?[0-9]+"#)

    /// One line: equal after normalizing, or equal up to `...` and numbers within `tolerance`.
    static func lineMatches(_ expected: String, _ actual: String) -> Bool {
        let expected = normalized(expected), actual = normalized(actual)
        if expected == actual { return true }
        var pattern = "^"
        var numbers: [Double] = []
        var last = expected.startIndex
        for match in piece.matches(in: expected, range: NSRange(expected.startIndex..., in: expected)) {
            let range = Range(match.range, in: expected)!
            pattern += NSRegularExpression.escapedPattern(for: String(expected[last..<range.lowerBound]))
            let text = String(expected[range])
            if text == "..." {
                pattern += ".*?"
            } else {
                pattern += "(-?[0-9]+(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
                numbers.append(Double(text)!)
            }
            last = range.upperBound
        }
        pattern += NSRegularExpression.escapedPattern(for: String(expected[last...])) + "$"
        guard let regex = try? NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators]),
              let match = regex.firstMatch(in: actual, range: NSRange(actual.startIndex..., in: actual)) else { return false }
        for (k, want) in numbers.enumerated() {
            guard let range = Range(match.range(at: k + 1), in: actual), let got = Double(actual[range]),
                  abs(got - want) <= tolerance * abs(want) else { return false }
        }
        return true
    }
}
