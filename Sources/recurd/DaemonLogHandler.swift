import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The daemon's diagnostics on stderr, one line each: `recurd: notice: message key=value ...`.
/// No timestamps: under systemd the journal adds them, and at a terminal they are noise.
/// (In --stdin mode stdout carries the events, so diagnostics must stay on stderr.)
struct DaemonLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level

    init(label: String, level: Logger.Level) {
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = "recurd: \(event.level): \(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if !merged.isEmpty {
            line += " " + merged.keys.sorted().map { "\($0)=\(merged[$0]!)" }.joined(separator: " ")
        }
        writeStandardError(line + "\n")
    }
}

/// Writes all of `text` to stderr in one call where possible (lines from several threads
/// do not interleave mid-line), retrying short writes and EINTR.
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = write(STDERR_FILENO, p, left)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            p += n
            left -= n
        }
    }
}
