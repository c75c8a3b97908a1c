import Logging
import NIOCore
import RecurEngine
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Stdin mode: text flows in, one event per absorbed token flows out on stdout, written as
/// each piece is absorbed so `tail -f app.log | recurd --stdin` shows predictions live.
///
/// Without the key field all input is one stream (`configuration.stdinStream`); with it, each
/// `key<TAB>text` line feeds `text` plus its newline to stream `key`. At end of input (or on
/// graceful shutdown) every stream's tokenizer is flushed and a summary goes to stderr:
/// tokens, mean loss in nats/token, bits/token, perplexity. Text the model cannot tokenize
/// is reported on stderr and skipped.
public final class StdinPipeline: Service {
    /// The client id the pipeline uses with the engine (connections count from 1).
    public static let client: ClientID = 0

    let engine: StreamEngine
    let configuration: RecurdConfiguration
    let notices: NoticeRouter
    let logger: Logger
    let input: any ByteChunkSource
    let output: any ByteSink
    let diagnostics: any ByteSink
    let encoder: ReplyEncoder
    let tsv: TSVFormatter

    /// Reads the process's stdin, writes events to stdout and the summary to stderr.
    /// - Parameter notices: the router installed on `engine`; notices about the pipeline's
    ///   streams are printed (JSON: on stdout like the socket's; TSV: on stderr).
    public convenience init(engine: StreamEngine, configuration: RecurdConfiguration, notices: NoticeRouter, logger: Logger) {
        self.init(engine: engine, configuration: configuration, notices: notices, logger: logger,
                  input: FileDescriptorSource(descriptor: STDIN_FILENO),
                  output: FileDescriptorSink(descriptor: STDOUT_FILENO),
                  diagnostics: FileDescriptorSink(descriptor: STDERR_FILENO))
    }

    init(engine: StreamEngine, configuration: RecurdConfiguration, notices: NoticeRouter, logger: Logger,
         input: any ByteChunkSource, output: any ByteSink, diagnostics: any ByteSink) {
        self.engine = engine
        self.configuration = configuration
        self.notices = notices
        self.logger = logger
        self.input = input
        self.output = output
        self.diagnostics = diagnostics
        encoder = ReplyEncoder(model: engine.model)
        tsv = TSVFormatter(tokens: encoder.tokens)
    }

    /// Pumps stdin to stdout until the end of input or graceful shutdown, then prints the summary.
    /// - Throws: when stdin cannot be read or stdout cannot be written.
    public func run() async throws {
        let mailbox = notices.open(Self.client)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.printNotices(mailbox) }
            var summary = PipelineSummary()
            try await withGracefulShutdownHandler {
                try await pump(&summary)
            } onGracefulShutdown: { [input] in
                input.stop()
            }
            notices.close(Self.client)
            try await say(summary.line)
        }
    }

    /// Reads all input, feeding and printing, then flushes every stream's tokenizer.
    private func pump(_ summary: inout PipelineSummary) async throws {
        let k = configuration.engine.defaultTopK
        if configuration.keyField {
            var splitter = KeyedLineSplitter(maxLength: configuration.maxLineLength)
            var keys: [String] = []
            var known: Set<String> = []
            while let chunk = try await input.next() {
                for item in splitter.push(chunk) {
                    try await handle(item, k: k, keys: &keys, known: &known, summary: &summary)
                }
            }
            for item in splitter.finish() {
                try await handle(item, k: k, keys: &keys, known: &known, summary: &summary)
            }
            for key in keys {
                try await feed(stream: key, text: [], k: k, flush: true, summary: &summary)
            }
        } else {
            let stream = configuration.stdinStream
            while let chunk = try await input.next() {
                var start = 0
                while start < chunk.count {
                    let end = min(start + 4096, chunk.count)
                    try await feed(stream: stream, text: Array(chunk[start..<end]), k: k, flush: false, summary: &summary)
                    start = end
                }
            }
            try await feed(stream: stream, text: [], k: k, flush: true, summary: &summary)
        }
    }

    private func handle(_ item: KeyedLineSplitter.Item, k: Int, keys: inout [String], known: inout Set<String>,
                        summary: inout PipelineSummary) async throws {
        switch item {
        case .line(let key, let text):
            if let problem = StreamName.problem(with: key, field: "key") {
                try await say("recurd: skipped a line: \(problem)")
                return
            }
            if known.insert(key).inserted { keys.append(key) }
            try await feed(stream: key, text: text, k: k, flush: false, summary: &summary)
        case .missingKey(let line):
            try await say("recurd: skipped line \(line): it has no tab, so no key (key-field lines are key<TAB>text)")
        case .tooLong(let line, let limit):
            try await say("recurd: skipped line \(line): it is longer than the limit of \(limit) bytes")
        case .badKey(let line):
            try await say("recurd: skipped line \(line): its key is not valid UTF-8")
        }
    }

    /// Feeds one piece and prints its events; text the model cannot take is reported and skipped.
    private func feed(stream: String, text: [UInt8], k: Int, flush: Bool, summary: inout PipelineSummary) async throws {
        let events: [TokenEvent]
        do {
            events = try await engine.feed(stream: stream, text: text, topK: k, flush: flush, client: Self.client)
        } catch .shuttingDown {
            input.stop()
            return
        } catch {
            try await say("recurd: stream '\(stream)': \(error.description); skipped \(text.count) bytes")
            return
        }
        guard !events.isEmpty else { return }
        summary.add(events)
        var buffer = ByteBuffer()
        switch configuration.format {
        case .json:
            let quoted = encoder.quoted(stream)
            for event in events { encoder.event(event, id: nil, quotedStream: quoted, into: &buffer) }
        case .tsv:
            let key = configuration.keyField ? stream : nil
            for event in events { tsv.write(event, key: key, into: &buffer) }
        }
        try await output.write(buffer)
    }

    private func printNotices(_ mailbox: AsyncStream<StreamNotice>) async throws {
        for await notice in mailbox {
            switch configuration.format {
            case .json:
                var buffer = ByteBuffer()
                encoder.notice(notice, into: &buffer)
                try await output.write(buffer)
            case .tsv:
                try await say("recurd: \(notice.kind.rawValue) '\(notice.stream)': \(notice.message)")
            }
        }
    }

    /// One line on stderr.
    private func say(_ line: String) async throws {
        try await diagnostics.write(ByteBuffer(string: line + "\n"))
    }
}
