import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Diagnostics for people at a terminal: `recur: warning: message`, one line each, on stderr.
/// The level comes from the environment variable `RECUR_LOG_LEVEL` (trace ... critical,
/// default `info`). Metadata, if any, follows the message as `key=value` pairs.
struct CLILogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level

    init(label: String) {
        let name = getenv("RECUR_LOG_LEVEL").map { String(cString: $0).lowercased() }
        logLevel = name.flatMap(Logger.Level.init(rawValue:)) ?? .info
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = "recur: \(event.level): \(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if !merged.isEmpty {
            line += " " + merged.keys.sorted().map { "\($0)=\(merged[$0]!)" }.joined(separator: " ")
        }
        StandardError.writeLine(line)
    }
}

/// The one logger of the CLI.
let logger = Logger(label: "recur")
