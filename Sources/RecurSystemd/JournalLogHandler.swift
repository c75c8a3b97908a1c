import Logging

/// A swift-log backend writing structured journal entries: MESSAGE, PRIORITY (syslog levels),
/// CODE_FILE, CODE_LINE, CODE_FUNC, SYSLOG_IDENTIFIER, and each metadata key as a `RECUR_` field
/// (`JournalFieldName.forMetadataKey`), so `journalctl RECUR_STREAM=s1` finds a stream's entries.
public struct JournalLogHandler: LogHandler {
    /// Metadata added to every entry.
    public var metadata: Logger.Metadata = [:]
    /// Entries below this level are dropped.
    public var logLevel: Logger.Level
    /// SYSLOG_IDENTIFIER, e.g. "recurd".
    public let identifier: String
    /// Where entries go; `Journal.send` unless a test captures them.
    let sink: @Sendable ([(String, String)]) -> Void

    /// A handler for `identifier` at `level`, sending to the journal.
    public init(identifier: String, level: Logger.Level) {
        self.init(identifier: identifier, level: level, sink: { Journal.send($0) })
    }

    /// A handler whose entries go to `sink` (tests).
    public init(identifier: String, level: Logger.Level, sink: @escaping @Sendable ([(String, String)]) -> Void) {
        self.identifier = identifier
        logLevel = level
        self.sink = sink
    }

    /// One metadata value.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Sends the event as one entry.
    public func log(event: LogEvent) {
        sink(fields(for: event))
    }

    /// The entry's fields, in a fixed order (metadata sorted by key).
    func fields(for event: LogEvent) -> [(String, String)] {
        var fields: [(String, String)] = [
            ("MESSAGE", "\(event.message)"),
            ("PRIORITY", "\(Self.priority(event.level))"),
            ("SYSLOG_IDENTIFIER", identifier),
            ("CODE_FILE", event.file),
            ("CODE_LINE", "\(event.line)"),
            ("CODE_FUNC", event.function),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() {
            fields.append((JournalFieldName.forMetadataKey(key), "\(merged[key]!)"))
        }
        return fields
    }

    /// syslog(3) priorities: trace and debug 7, info 6, notice 5, warning 4, error 3, critical 2.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}
