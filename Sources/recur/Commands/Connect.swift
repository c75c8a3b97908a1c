import ArgumentParser
import RecurCore
import RecurSocketPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `recur connect`: a client of a running `recurd --socket`. Text from stdin is fed to a
/// stream; every absorbed token comes back with its log-probability and the next predictions.
struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "Feed stdin to a recurd stream and print a prediction after every token.",
        discussion: """
            Reads text from stdin: at a terminal line by line, from a pipe chunk by chunk as \
            it arrives (so 'tail -f LOG | recur connect' works). Each token prints as one line, \
            tab-separated like 'recurd --format tsv': its offset in the stream, the token \
            (newline as \\n, tab as \\t; for a byte model every byte but printable ASCII as \\xNN, \
            newline \\x0A, as 'recurd --format tsv' shows them), the natural \
            log-probability the model gave it before it arrived, and the top predictions \
            after it as token:probability pairs. With --json the daemon's \
            replies print unchanged, one JSON object a line (docs/PROTOCOL.md), except the \
            reply to the flush sent at end of input when it absorbed nothing. Streams outlive \
            the connection: run again with the same --stream to continue it. The text must be \
            UTF-8 (invalid bytes are sent as U+FFFD); for raw bytes use 'recurd --stdin'.
            """)

    @OptionGroup var daemonSocket: DaemonSocketOption

    @Option(help: ArgumentHelp("Feed this named stream, creating it or continuing it (default: a private stream that ends with the connection).", valueName: "name"))
    var stream: String?

    @Option(help: ArgumentHelp("Predictions listed after each token (default: 3; with --json, the daemon's default).", valueName: "k"))
    var topK: Int?

    @Flag(help: "Print the daemon's JSON lines unchanged instead of readable lines.")
    var json = false

    func validate() throws {
        if let stream, stream.isEmpty || stream.utf8.count > 256 {
            throw ValidationError("--stream must be 1 to 256 bytes, got \(stream.utf8.count)")
        }
        if let topK, topK < 0 { throw ValidationError("--top-k must not be negative, got \(topK)") }
    }

    func run() throws {
        let connection = try DaemonConnection(path: daemonSocket.path)
        let session = ConnectSession(connection: connection, stream: stream,
                                     topK: topK ?? (json ? nil : 3), json: json)
        try session.run()
    }
}

// MARK: - The session

/// One run of `recur connect`: a single thread polling stdin and the socket. One feed request
/// is in flight at a time, so the daemon's per-stream queue never overflows, and notices
/// (an expired or evicted stream) print even while stdin is quiet.
private final class ConnectSession {
    let connection: DaemonConnection
    let stream: String?
    let topK: Int?
    let json: Bool
    private let out = StandardOutput()
    private let input = UTF8Chunker()
    private var nextID = 1
    private var awaiting: Int?
    private var stdinOpen = true
    private var errors = 0
    /// The id of the feed sent at end of input to flush the tokenizer: connect's own request,
    /// whose reply --json prints only when it absorbed something (a held-back word).
    private var flushID: Int?
    /// The daemon's model reads bytes: its text bytes (a newline, a tab) arrive as text and
    /// are shown as `\xNN`, as `recurd --format tsv` shows them.
    private var byteModel = false

    init(connection: DaemonConnection, stream: String?, topK: Int?, json: Bool) {
        self.connection = connection
        self.stream = stream
        self.topK = topK
        self.json = json
    }

    func run() throws {
        defer { out.flush() }
        if !json { byteModel = try askTokenizer() == "byte" }
        while stdinOpen || awaiting != nil {
            var fds = [pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)]
            let readStdin = stdinOpen && awaiting == nil
            if readStdin { fds.append(pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)) }
            out.flush()
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                throw CLIError("poll failed: \(String(cString: strerror(errno)))")
            }
            if fds[0].revents != 0 { try receive() }
            if readStdin, fds[1].revents != 0 { try readInput() }
        }
        if errors > 0 { throw ExitCode(1) }
    }

    /// The model's tokenizer (`model` request, id 0), before anything is fed.
    private func askTokenizer() throws -> String? {
        try connection.send("{\"op\":\"model\",\"id\":0}\n")
        while true {
            while let line = connection.nextLine() {
                guard let message = try? JSONValue.parse(line), message["id"] == .number("0") else { continue }
                return message["tokenizer"]?.stringValue
            }
            guard try connection.fill() else { throw CLIError("recurd closed the connection before answering") }
        }
    }

    /// Reads what stdin has (a line at a terminal) and sends it; at end of input, a final
    /// feed with "flush" so that a word the tokenizer held back is absorbed too.
    private func readInput() throws {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress!, $0.count) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { return }
            throw CLIError("cannot read standard input: \(String(cString: strerror(errno)))")
        }
        if n == 0 {
            stdinOpen = false
            try sendFeed(input.finish(), flush: true)
            return
        }
        let text = input.append(chunk[..<n])
        if !text.isEmpty { try sendFeed(text, flush: false) }
    }

    private func sendFeed(_ text: String, flush: Bool) throws {
        var members: [(String, JSONText)] = [("op", .string("feed"))]
        if let stream { members.append(("stream", .string(stream))) }
        members.append(("text", .string(text)))
        if let topK { members.append(("k", .int(topK))) }
        if flush {
            members.append(("flush", .bool(true)))
            if text.isEmpty { flushID = nextID }
        }
        members.append(("id", .int(nextID)))
        awaiting = nextID
        nextID += 1
        try connection.send(JSONText.object(members).rendered + "\n")
    }

    /// Handles every complete line the daemon has sent.
    private func receive() throws {
        guard try connection.fill() else {
            if let message = connection.pendingLineAtClose() { try handle(line: message) }
            throw CLIError("recurd closed the connection\(awaiting != nil ? " before answering" : "")")
        }
        while let line = connection.nextLine() { try handle(line: line) }
    }

    private func handle(line: [UInt8]) throws {
        let message = try? JSONValue.parse(line)
        if json {
            let isEmptyFlushReply = flushID != nil && message?["id"] == .number(String(flushID!))
                && message?["error"] == nil && message?["tokens"]?.intValue == 0
            if !isEmptyFlushReply {
                out.write(bytes: line)
                out.write("\n")
            }
        }
        guard let message else {
            if !json { out.writeLine(String(decoding: line, as: UTF8.self)) }
            return
        }
        let isReply = awaiting != nil && message["id"] == .number(String(awaiting!))
        if let error = message["error"] {
            errors += 1
            out.flush()
            let code = error["code"]?.stringValue ?? "error"
            let text = error["message"]?.stringValue ?? "(no message)"
            StandardError.writeLine("recur: error: recurd: \(code): \(text)")
            if isReply { awaiting = nil }
            return
        }
        if message["token"] != nil, message["offset"] != nil {
            if !json { out.writeLine(Self.readable(event: message, byteModel: byteModel)) }
            return
        }
        if isReply {
            awaiting = nil
            return
        }
        if !json, let notice = message["notice"]?.stringValue {
            out.flush()
            let stream = message["stream"]?.stringValue ?? "?"
            let text = message["message"]?.stringValue ?? ""
            StandardError.writeLine("recur: notice: stream '\(stream)' \(notice)\(text.isEmpty ? "" : ": \(text)")")
        }
    }

    /// `offset<TAB>token<TAB>logprob<TAB>t1:p1,t2:p2,...` as `recurd --format tsv` prints
    /// events (fewer digits), tokens in the display
    /// form `recurd --format tsv` and `recur eval --per-token` use, so that a newline or tab
    /// in a token cannot break the line (a space stays a space).
    static func readable(event: JSONValue, byteModel: Bool = false) -> String {
        let escaped = { (token: String) in byteModel ? Self.escapedByte(token) : Self.escaped(token) }
        let offset = event["offset"]?.intValue.map(String.init) ?? "?"
        let token = escaped(event["token"]?.stringValue ?? "")
        let logprob = event["logprob"]?.doubleValue.map { Format.fixed($0, 4) } ?? "-"
        var next: [String] = []
        if case .array(let items)? = event["next"] {
            for item in items {
                let p = item["p"]?.doubleValue.map { Format.fixed($0, 3) } ?? "?"
                next.append("\(escaped(item["token"]?.stringValue ?? "")):\(p)")
            }
        }
        return "\(offset)\t\(token)\t\(logprob)\t\(next.joined(separator: ","))"
    }

    /// Newline, tab and other control characters as escapes (byte tokens arrive as `\xNN`
    /// already), as `Vocabulary.display` shows tokens everywhere else.
    static func escaped(_ token: String) -> String {
        Vocabulary.escapedForDisplay(token)
    }

    /// A byte model's token as `Vocabulary.display` shows it: a control byte (which events
    /// send as text: tab, newline, carriage return) as `\xNN`, everything else as it came.
    static func escapedByte(_ token: String) -> String {
        guard token.unicodeScalars.count == 1, let scalar = token.unicodeScalars.first,
              scalar.value < 0x20 || scalar.value == 0x7F else { return token }
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "\\x" + (hex.count == 1 ? "0" : "") + hex
    }
}

// MARK: - Input text

/// Turns stdin's bytes into valid UTF-8 text chunk by chunk: a multi-byte character split
/// between two reads waits for its tail, and invalid bytes become U+FFFD (JSON strings can
/// only carry Unicode text).
private final class UTF8Chunker {
    private var held: [UInt8] = []

    /// The text of everything so far, minus an unfinished trailing character.
    func append(_ bytes: ArraySlice<UInt8>) -> String {
        held.append(contentsOf: bytes)
        let cut = completeLength(held)
        let text = String(decoding: held[..<cut], as: UTF8.self)
        held.removeSubrange(..<cut)
        return text
    }

    /// Whatever is left at end of input (an unfinished character becomes U+FFFD).
    func finish() -> String {
        defer { held.removeAll() }
        return String(decoding: held, as: UTF8.self)
    }

    /// The length of `bytes` without a trailing sequence that a later byte could complete.
    private func completeLength(_ bytes: [UInt8]) -> Int {
        var start = bytes.count
        // A sequence is at most 4 bytes: look back over up to 3 continuation bytes for its lead.
        while start > 0, bytes.count - start < 4, bytes[start - 1] & 0xC0 == 0x80 { start -= 1 }
        guard start > 0 else { return bytes.count }
        let lead = bytes[start - 1]
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        let have = bytes.count - (start - 1)
        return length > 1 && have < length ? start - 1 : bytes.count
    }
}

// MARK: - The socket

#if canImport(Glibc)
private let systemConnect = Glibc.connect
private let systemSend = Glibc.send
private let streamSocket = Int32(SOCK_STREAM.rawValue)
#else
private let systemConnect = Darwin.connect
private let systemSend = Darwin.send
private let streamSocket = SOCK_STREAM
#endif

/// A connected Unix stream socket to recurd with a line buffer for what it sends.
final class DaemonConnection {
    let fd: Int32
    let path: String
    private var buffer: [UInt8] = []
    private var scanned = 0

    /// Connects to `path`, with errors that say what to do about a missing or dead daemon.
    init(path: String) throws(CLIError) {
        self.path = path
        fd = socket(AF_UNIX, streamSocket, 0)
        guard fd >= 0 else { throw CLIError("cannot create a socket: \(String(cString: strerror(errno)))") }
        guard let status = UnixSocketAddress.withAddress(of: path, { systemConnect(fd, $0, $1) }) else {
            close(fd)
            throw CLIError("the socket path '\(path)' is longer than the \(UnixSocketAddress.maxPathLength) bytes a Unix socket allows")
        }
        guard status == 0 else {
            let code = errno
            close(fd)
            switch code {
            case ENOENT:
                throw CLIError("no recurd socket at '\(path)': start 'recurd --model MODEL --socket \(path)', or point --socket or RECURD_SOCKET at the daemon's socket")
            case ECONNREFUSED where !Self.isSocket(path):
                throw CLIError("'\(path)' is not a socket; point --socket or RECURD_SOCKET at the daemon's socket")
            case ECONNREFUSED:
                throw CLIError("nothing is listening on '\(path)' (connection refused): the daemon has stopped, leaving a stale socket file; restart recurd")
            case EACCES:
                throw CLIError("permission denied connecting to '\(path)': the socket belongs to another user or group")
            case ENOTSOCK:
                throw CLIError("'\(path)' is not a socket")
            default:
                throw CLIError("cannot connect to '\(path)': \(String(cString: strerror(code)))")
            }
        }
    }

    deinit { close(fd) }

    private static func isSocket(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    func send(_ text: String) throws(CLIError) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { systemSend(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw CLIError("recurd closed the connection (\(String(cString: strerror(errno))))")
            }
            offset += n
        }
    }

    /// Reads what the socket has; false at end of stream.
    func fill() throws(CLIError) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == ECONNRESET { return false }
            guard n >= 0 else { throw CLIError("cannot read from recurd: \(String(cString: strerror(errno)))") }
            if n == 0 { return false }
            buffer.append(contentsOf: chunk[..<n])
            return true
        }
    }

    /// The next complete line, without its newline.
    func nextLine() -> [UInt8]? {
        guard let newline = buffer[scanned...].firstIndex(of: 10) else {
            scanned = buffer.count
            return nil
        }
        let line = Array(buffer[..<newline])
        buffer.removeSubrange(...newline)
        scanned = 0
        return line
    }

    /// An unterminated last line, when the daemon closed the connection after it.
    func pendingLineAtClose() -> [UInt8]? {
        guard !buffer.isEmpty else { return nil }
        defer { buffer.removeAll() }
        return buffer
    }
}
