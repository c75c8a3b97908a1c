#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Human-readable numbers for summaries and the progress line.
enum Format {
    /// `x` with `digits` digits after the point.
    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        var buffer = [CChar](repeating: 0, count: 64)
        _ = withVaList([Int32(digits), x]) { vsnprintf(&buffer, buffer.count, "%.*f", $0) }
        return cString(buffer)
    }

    /// `x` in scientific notation with 2 decimals, e.g. 2.00e-03 (learning rates).
    static func scientific(_ x: Double) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        _ = withVaList([x]) { vsnprintf(&buffer, buffer.count, "%.2e", $0) }
        return cString(buffer)
    }

    /// A number as typed: 1.0 -> "1", 0.5 -> "0.5".
    static func trimmed(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }

    /// 1234 -> "1.2k", 3_400_000 -> "3.4M".
    static func count(_ x: Double) -> String {
        let magnitude = abs(x)
        if magnitude >= 1e9 { return fixed(x / 1e9, 1) + "G" }
        if magnitude >= 1e6 { return fixed(x / 1e6, 1) + "M" }
        if magnitude >= 1e3 { return fixed(x / 1e3, 1) + "k" }
        return fixed(x, 0)
    }

    /// 1234567 -> "1,234,567".
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Seconds as "42.1s", "3m07s" or "2h05m".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        if seconds < 60 { return fixed(seconds, 1) + "s" }
        let s = Int(seconds.rounded())
        if s < 3600 { return "\(s / 60)m" + twoDigits(s % 60) + "s" }
        return "\(s / 3600)h" + twoDigits(s / 60 % 60) + "m"
    }

    /// Bytes as "812 B", "1.2 KB", "3.4 MB" (powers of 1000, as `ls -h --si`).
    static func bytes(_ n: Int) -> String {
        let x = Double(n)
        if x >= 1e9 { return fixed(x / 1e9, 2) + " GB" }
        if x >= 1e6 { return fixed(x / 1e6, 2) + " MB" }
        if x >= 1e3 { return fixed(x / 1e3, 1) + " KB" }
        return "\(n) B"
    }

    private static func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// `words` joined for a shell: arguments with special characters single-quoted, so the
    /// provenance's command can be pasted back into a shell.
    static func shellCommand(_ words: [String]) -> String {
        words.map { word in
            let safe = !word.isEmpty && word.unicodeScalars.allSatisfy {
                ($0.properties.isAlphabetic && $0.isASCII) || "0123456789-_./=:,+@%".unicodeScalars.contains($0)
            }
            return safe ? word : "'" + word.replacingAll("'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }

    /// The current UTC time as ISO 8601, e.g. 2025-01-31T12:34:56Z.
    static func isoDateNow() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        _ = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return cString(buffer)
    }
}

/// The text of a NUL-terminated C buffer.
private func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension String {
    /// Every occurrence of `target` replaced (no Foundation needed).
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}

/// Seconds on a monotonic clock, for timing runs (never jumps with the wall clock).
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
