import Logging
import NIOCore
import RecurCore
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
/// `key<TAB>text` line feeds `text` plus its newline to stream `key`. The pipeline tokenizes
/// each stream itself, so that a piece of text the model cannot tokenize (a character outside
/// a char model's vocabulary, a word outside a word model's, under the `error` policy) is
/// reported on stderr with its line and left out, and nothing else is: however the pipe splits
/// the input, the other pieces are absorbed exactly as `recur eval` would cut them. At end of
/// input (or on graceful shutdown) every stream's tokenizer is flushed and a summary goes to
/// stderr: the tokens the streams absorbed while the pipeline ran (whoever fed them: socket
/// clients may feed the same streams), mean loss in nats/token, bits/token, perplexity, and
/// how much was skipped.
public final class StdinPipeline: Service {
    /// The client id the pipeline uses with the engine (connections count from 1).
    public static let client: ClientID = 0
    /// Skipped pieces reported one by one; beyond, the summary counts them.
    static let maxSkipReports = 100
    /// Tokens per engine feed: a 64 KiB read is absorbed and printed in a few pieces.
    static let tokensPerFeed = 4096

    let engine: StreamEngine
    let configuration: RecurdConfiguration
    let notices: NoticeRouter
    let logger: Logger
    let input: any ByteChunkSource
    let output: any ByteSink
    let diagnostics: any ByteSink
    let encoder: ReplyEncoder
    let tsv: TSVFormatter
    let tokenizer: Tokenizer

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
        tokenizer = Tokenizer(engine.model.vocabulary)
    }

    /// One stream's input side: its tokenizer, and the counts for the summary.
    private struct StreamInput {
        var encoder: IncrementalEncoder
        /// What the pipeline's own feeds absorbed.
        var own = StreamTally()
        /// What other clients (socket connections) fed the stream between the pipeline's feeds.
        var others = StreamTally()
        /// The stream's counters as the pipeline last knew them; nil before its first feed.
        var lastSeen: StreamTally?
    }

    /// What `pump` keeps between chunks.
    private struct PumpState {
        /// Streams in the order the pipeline first fed them.
        var order: [String] = []
        var streams: [String: StreamInput] = [:]
        var skipped = 0
        /// Tokens the engine refused (reported as they were).
        var refused = 0
    }

    /// Pumps stdin to stdout until the end of input or graceful shutdown, then prints the summary.
    /// - Throws: when stdin cannot be read or stdout cannot be written.
    public func run() async throws {
        let mailbox = notices.open(Self.client)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.printNotices(mailbox) }
            var state = PumpState()
            try await withGracefulShutdownHandler {
                try await pump(&state)
            } onGracefulShutdown: { [input] in
                input.stop()
            }
            let summary = await summarize(&state)
            notices.close(Self.client)
            for line in summary.lines { try await say(line) }
        }
    }

    /// Reads all input, feeding and printing, then flushes every stream's tokenizer.
    private func pump(_ state: inout PumpState) async throws {
        if configuration.keyField {
            var splitter = KeyedLineSplitter(maxLength: configuration.maxLineLength)
            while let chunk = try await input.next() {
                for item in splitter.push(chunk) { try await handle(item, &state) }
            }
            for item in splitter.finish() { try await handle(item, &state) }
            for key in state.order { try await finish(stream: key, line: nil, &state) }
        } else {
            let stream = configuration.stdinStream
            var line = 1
            while let chunk = try await input.next() {
                try await absorb(chunk[...], stream: stream, line: &line, &state)
            }
            try await finish(stream: stream, line: line, &state)
        }
    }

    private func handle(_ item: KeyedLineSplitter.Item, _ state: inout PumpState) async throws {
        switch item {
        case .line(let key, let text, var line):
            try await absorb(text[...], stream: key, line: &line, &state)
        case .missingKey(let line):
            try await say("recurd: skipped line \(line): it has no tab, so no key (key-field lines are key<TAB>text)")
        case .tooLong(let line, let limit):
            try await say("recurd: skipped line \(line): it is longer than the limit of \(limit) bytes")
        case .badKey(let line, let problem):
            try await say("recurd: skipped line \(line): \(problem)")
        }
    }

    /// Tokenizes `bytes` (which start on input line `line`) with the stream's tokenizer,
    /// leaving out and reporting what the model cannot tokenize, and feeds the rest.
    private func absorb(_ bytes: ArraySlice<UInt8>, stream: String, line: inout Int, _ state: inout PumpState) async throws {
        if state.streams[stream] == nil {
            state.streams[stream] = StreamInput(encoder: IncrementalEncoder(tokenizer: tokenizer))
            state.order.append(stream)
        }
        var tokens: [Int32] = []
        var start = bytes.startIndex
        // Line by line, so that each skipped piece is reported with the line it ends on.
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: 0x0A).map { $0 + 1 } ?? bytes.endIndex
            var skipped: [UnknownPiece] = []
            tokens += state.streams[stream]!.encoder.feed(bytes[start..<end], skipping: &skipped)
            if !skipped.isEmpty {
                // What came before is printed before the report.
                try await feed(stream: stream, tokens: tokens, &state)
                tokens.removeAll()
                try await report(skipped, stream: stream, line: line, &state)
            }
            if bytes[end - 1] == 0x0A { line += 1 }
            start = end
        }
        try await feed(stream: stream, tokens: tokens, &state)
    }

    /// Ends a stream's input: the tokenizer's held-back bytes and word are absorbed.
    private func finish(stream: String, line: Int?, _ state: inout PumpState) async throws {
        guard state.streams[stream] != nil else { return }
        var skipped: [UnknownPiece] = []
        let tokens = state.streams[stream]!.encoder.finish(skipping: &skipped)
        try await feed(stream: stream, tokens: tokens, &state)
        try await report(skipped, stream: stream, line: line, &state)
    }

    /// One stderr line per skipped piece, up to `maxSkipReports` in all.
    private func report(_ pieces: [UnknownPiece], stream: String, line: Int?, _ state: inout PumpState) async throws {
        for piece in pieces {
            state.skipped += 1
            if state.skipped <= Self.maxSkipReports {
                let place = line.map { "line \($0), " } ?? ""
                try await say("recurd: \(place)stream '\(stream)': skipped \(piece.description), which is not in the model's vocabulary")
            }
            if state.skipped == Self.maxSkipReports {
                try await say("recurd: further text the model cannot tokenize is skipped without a report each; the summary at the end counts it")
            }
        }
    }

    /// Feeds tokens and prints their events.
    private func feed(stream: String, tokens: [Int32], _ state: inout PumpState) async throws {
        guard !tokens.isEmpty else { return }
        await observe(stream, &state)
        var start = 0
        while start < tokens.count {
            let end = min(start + Self.tokensPerFeed, tokens.count)
            let events: [TokenEvent]
            do {
                events = try await engine.feed(stream: stream, tokens: Array(tokens[start..<end]),
                                               topK: configuration.engine.defaultTopK, client: Self.client)
            } catch .shuttingDown {
                input.stop()
                return
            } catch {
                state.refused += end - start
                try await say("recurd: stream '\(stream)': \(error.description); \(PipelineSummary.count(end - start, "token")) not absorbed")
                start = end
                continue
            }
            start = end
            state.streams[stream]?.own.add(events)
            state.streams[stream]?.lastSeen?.add(events)
            try await write(events, stream: stream)
        }
    }

    /// Counts what other clients fed the stream since the pipeline last saw it (all of it
    /// when the stream restarted: expired, ended or reset), so the summary includes it.
    private func observe(_ stream: String, _ state: inout PumpState) async {
        guard state.streams[stream] != nil else { return }
        let now: StreamTally
        do {
            now = StreamTally(try await engine.info(stream: stream))
        } catch .unknownStream {
            now = .zero
        } catch {
            return  // shutting down: nothing more will change
        }
        if let last = state.streams[stream]!.lastSeen { state.streams[stream]!.others.add(now.since(last)) }
        state.streams[stream]!.lastSeen = now
    }

    private func write(_ events: [TokenEvent], stream: String) async throws {
        guard !events.isEmpty else { return }
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

    /// What the pipeline's streams absorbed while it ran: its own feeds, and what socket
    /// clients fed the same streams meanwhile.
    private func summarize(_ state: inout PumpState) async -> PipelineSummary {
        var summary = PipelineSummary()
        summary.skipped = state.skipped
        summary.refused = state.refused
        summary.skippedUnit = tokenizer.vocabulary.kind == .word ? "word" : "character"
        for stream in state.order where state.streams[stream]?.lastSeen != nil {
            await observe(stream, &state)
            var tally = state.streams[stream]!.own
            tally.add(state.streams[stream]!.others)
            summary.add(stream: tally)
        }
        return summary
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
