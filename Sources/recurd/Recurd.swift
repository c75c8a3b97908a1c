import ArgumentParser
import Logging
import RecurCluster
import RecurCore
import RecurEngine
import RecurHTTP
import RecurServer
import RecurSocketPath
import RecurStore
import RecurSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `recurd`: keeps a hidden state per stream and predicts after every token, for text piped
/// through stdin or for clients on a Unix socket (docs/PROTOCOL.md).
struct Recurd: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "recurd",
        abstract: "Stream text through a recurrent language model: a prediction after every token.",
        discussion: """
            With --stdin, text flows in and one event per token flows out, flushed as each \
            token is absorbed (so 'tail -f LOG | recurd --model M --stdin' works). With \
            --socket, programs connect to a Unix socket and speak newline-delimited JSON \
            (docs/PROTOCOL.md; try it with 'socat - UNIX-CONNECT:PATH'). Both may run at once. \
            SIGTERM or SIGINT shuts down gracefully: the request each connection is being \
            served finishes and is answered, the connection is closed, then the socket file is \
            removed. Under systemd SIGUSR2 (the unit's RestartKillSignal=) is a restart: the \
            connections are handed over to the next process instead. SIGHUP reloads the model file: a model with the same vocabulary \
            and state shape takes over every stream, anything else is refused and the old \
            model keeps serving. Diagnostics go to stderr, or to the journal under systemd. \
            Under systemd (docs/OPERATIONS.md) recurd is a Type=notify service with a \
            watchdog, takes its socket from recurd.socket (FileDescriptorName=recurd) and \
            needs no --socket. On a socket from systemd, a model that cannot be loaded at \
            start does not end recurd: it refuses each connection with a model_unavailable \
            error and serves as soon as the file loads (tried when it changes, and on SIGHUP).

            Without --state-dir, streams live in memory only: a restart loses them, and \
            streams beyond --max-streams or --idle-timeout are dropped (their clients are told; \
            --idle-timeout does not apply to --stdin streams, which live as long as their input). \
            With --state-dir DIR (created 0700; files 0600), streams are durable: feeds are \
            logged before any event acknowledges them, every stream is checkpointed every \
            --checkpoint-interval tokens and at a graceful stop, evicted and expired streams \
            are moved to DIR and come back on their next request, and after a restart or a \
            crash each stream is restored on its first request (checkpoint + replay of the \
            logged tail). --durability: strict = each feed segment is fsynced before it is \
            acknowledged (survives power loss); batched = written to the log before it is \
            acknowledged, fsynced every --sync-interval seconds (survives a crash or kill -9 \
            of recurd, not a power loss); off = no log, streams saved only when evicted, \
            expired or at a graceful stop (a crash loses what they absorbed since).
            """,
        version: version)

    @Option(help: ArgumentHelp("The model file (.safetensors), e.g. samples/logs.safetensors.", valueName: "model"))
    var model: String

    @Option(help: ArgumentHelp("Listen on a Unix socket at this path. A socket file there is replaced only when it is dead (connecting is refused) and this user's; anything else is a refusal to start.", valueName: "path"))
    var socket: String?

    @Flag(help: "Read text from stdin and write an event per token to stdout.")
    var stdin = false

    @Option(help: ArgumentHelp("--stdin output: json (one object per token, as the socket's feed events) or tsv (offset, token, logprob, top-k; like KenLM's query) (default: json).", valueName: "format"))
    var format: RecurdConfiguration.OutputFormat?

    @Flag(help: "--stdin input is key<TAB>text lines: one stream per key (logs from many hosts through one pipe).")
    var keyField = false

    @Option(help: ArgumentHelp("Predictions listed after each token, unless a request asks for another k.", valueName: "k"))
    var topK = 5

    @Option(help: ArgumentHelp("Longest request line (or --stdin line) accepted; the rest of a longer one is skipped with a too_long error. Accepts K and M suffixes.", valueName: "bytes"))
    var maxLine = ByteCount(bytes: 1 << 20)

    @Option(help: ArgumentHelp("Socket clients served at once; beyond this a new connection gets a clear refusal and is closed.", valueName: "n"))
    var maxConnections = 1024

    @Option(help: ArgumentHelp("Bytes the daemon holds for one connection: requests read but not yet served plus replies the client has not yet taken. Beyond it the connection is not read until the client reads its replies (nothing is dropped or reordered); this bounds the memory a client that never reads can cost. Accepts K and M suffixes.", valueName: "bytes"))
    var maxQueuedBytes = ByteCount(bytes: RecurdConfiguration().maxQueuedBytes)

    @Option(help: ArgumentHelp("Streams kept in memory at most; beyond this the least recently used idle one is evicted: dropped, its clients told, or with --state-dir moved to the state directory until its next request.", valueName: "n"))
    var maxStreams = EngineOptions().maxResidentStreams

    @Option(help: ArgumentHelp("Expire a socket client's stream after this many seconds without activity: dropped, its clients told, or with --state-dir moved to the state directory until its next request; 0 never expires. --stdin streams live as long as their input, unless --expire-stdin-streams.", valueName: "seconds"))
    var idleTimeout: Double = EngineOptions().idleTimeout ?? 0

    @Flag(help: "--idle-timeout expires --stdin streams too (by default a stdin stream keeps its state however long the input is quiet).")
    var expireStdinStreams = false

    @Option(help: ArgumentHelp("Keep streams durably in this directory (created 0700 if missing): token log, checkpoints, evicted streams. It must be this user's, not a symlink and writable by no one else (docs/OPERATIONS.md, Security model). Without it streams live in memory only.", valueName: "dir"))
    var stateDir: String?

    @Option(help: ArgumentHelp("Join a cluster of recurd nodes sharing this PostgreSQL database (postgres://USER@HOST:PORT/DATABASE, or postgres://USER@/DATABASE?host=/socket/dir): streams are kept there instead of in --state-dir, each node serves the streams of the key groups it holds a lease on, and a request for another node's stream is refused with 'moved', naming the owner (docs/CLUSTER.md).", valueName: "url"))
    var cluster: String?

    @Option(help: ArgumentHelp("With --cluster: this node's name, unique in the cluster (default: the host name).", valueName: "name"))
    var node: String?

    @Option(help: ArgumentHelp("With --cluster: seconds a key-group lease lasts without renewal; a dead node's groups are taken over after this (renewed every third of it; default: \(LeaseKeeper.Options().ttl)).", valueName: "seconds"))
    var leaseTtl: Double?

    @Option(help: ArgumentHelp("With --cluster: key groups of a new cluster (fixed at its creation; later nodes use the cluster's; default: \(KeyGroups.defaultCount)).", valueName: "n"))
    var keyGroups: Int?

    @Option(help: ArgumentHelp("With --cluster: accept requests forwarded by other nodes at HOST:PORT (port 0 takes a free one, logged as 'peer links listening on ADDRESS'), over mutual TLS with --peer-cert, --peer-key and --peer-ca; this node then forwards requests for other nodes' streams too. Without it, such requests are refused with 'moved'.", valueName: "host:port"))
    var peerListen: String?

    @Option(help: ArgumentHelp("With --peer-listen: the HOST:PORT other nodes connect to (default: the listening address; give it when listening on 0.0.0.0 or behind NAT).", valueName: "host:port"))
    var peerAdvertise: String?

    @Option(help: ArgumentHelp("With --peer-listen: this node's certificate (PEM), signed by the cluster's CA.", valueName: "path"))
    var peerCert: String?

    @Option(help: ArgumentHelp("With --peer-listen: the private key of --peer-cert (PEM).", valueName: "path"))
    var peerKey: String?

    @Option(help: ArgumentHelp("With --peer-listen: the cluster's CA certificate (PEM); only peers whose certificate it signed are served or trusted.", valueName: "path"))
    var peerCa: String?

    @Option(help: ArgumentHelp("With --cluster: where clients reach this node, as other nodes name it in 'moved' errors and 'recur cluster status' shows it (default: the --socket path on this host).", valueName: "address"))
    var advertise: String?

    @Option(help: ArgumentHelp("With --state-dir or --cluster: strict (fsync before acknowledging; survives power loss), batched (logged before acknowledging, fsync every --sync-interval; survives a crash or kill -9), off (no log; saved at eviction, expiry and graceful stop only) (default: strict).", valueName: "mode"))
    var durability: Durability?

    @Option(help: ArgumentHelp("With --state-dir or --cluster: checkpoint a stream after this many tokens, which bounds what recovery replays per stream (default: \(EngineOptions().checkpointInterval)).", valueName: "tokens"))
    var checkpointInterval: Int?

    @Option(help: ArgumentHelp("With --durability batched (only): seconds between fsyncs of the log (default: 1).", valueName: "seconds"))
    var syncInterval: Double?

    @Option(help: ArgumentHelp("With --state-dir or --cluster: keep a stream's whole token log while it has absorbed at most this many tokens, so that a model change can rebuild it by replay (beyond, it is reset, with a notice); not with --durability off, which keeps no log (default: \(StateStore.Options().replayHistory)).", valueName: "tokens"))
    var replayHistory: Int?

    @Option(help: ArgumentHelp("Members of this group, like root, see and may use every user's streams and are exempt from the per-user limits.", valueName: "group"))
    var adminGroup: String?

    @Option(help: ArgumentHelp("Streams one Unix user may own at once (0: no limit); one more is refused with quota_exceeded. Root and the admin group are exempt.", valueName: "n"))
    var maxStreamsPerUser = 0

    @Option(help: ArgumentHelp("Request bytes per second one Unix user may send over all its connections (0: no limit); a faster user is slowed down, not refused. Accepts K and M suffixes. Root and the admin group are exempt.", valueName: "bytes"))
    var maxBytesPerSecondPerUser = ByteCount(bytes: 0)

    @Option(help: ArgumentHelp("Scheduling: the first n tokens of every request are stepped before tokens of requests further along, and while any are, at most --bulk-rows-per-step tokens of longer requests share each step, so a short request is not slowed by long feeds in progress (0: plain turns, every request alike; default: \(EngineOptions().promptRows)).", valueName: "n"))
    var promptRows = EngineOptions().promptRows

    @Option(help: ArgumentHelp("Scheduling: tokens of requests within their first --prompt-rows stepped at once at most, those with the fewest stepped first (default: \(EngineOptions().promptRowsPerStep)).", valueName: "n"))
    var promptRowsPerStep = EngineOptions().promptRowsPerStep

    @Option(help: ArgumentHelp("Scheduling: tokens of long requests stepped beside a short request's (see --prompt-rows; default: \(EngineOptions().bulkRowsBesidePrompt)).", valueName: "n"))
    var bulkRowsPerStep = EngineOptions().bulkRowsBesidePrompt

    @Option(help: ArgumentHelp("Scheduling: a request that is the engine's only work is stepped on its connection's thread, for at most n turns of the stepping loop (a request of up to n-1 tokens), instead of being handed to the engine thread and back (0: always hand it over; default: \(EngineOptions().inlineTurns)).", valueName: "n"))
    var inlineTurns = EngineOptions().inlineTurns

    @Option(help: ArgumentHelp("Permissions of the socket file in octal, e.g. 666 to let every local user connect (streams stay private to their owner); default: as the umask makes it.", valueName: "mode"))
    var socketMode: String?

    @Option(help: ArgumentHelp("Serve HTTP at this address: GET /metrics in Prometheus text format to anyone, and the live view of streams (GET /) to holders of a token: the admin token in --http-token-file, or the one 'recur view' asks for (docs/OBSERVABILITY.md); every other path is 404. HOST:PORT (127.0.0.1:9464, [::1]:9464; port 0 takes a free one, logged as 'HTTP listening on ADDRESS') or unix:PATH. Off by default; under systemd recurd-http.socket passes the socket in (FileDescriptorName=recurd-http) and wins over this flag.", valueName: "address"))
    var http: String?

    @Option(help: ArgumentHelp("With --http: write the live view's admin token (random, new at every start; it shows every stream) to this file, mode 0640, group --admin-group if given. Default: http-token in $RUNTIME_DIRECTORY, else PATH.http-token beside the --socket PATH, else http-token in --state-dir.", valueName: "path"))
    var httpTokenFile: String?

    @Option(help: ArgumentHelp("The weights' number format for the products: fp32 (the model as trained), bf16 or int8 (smaller, approximate: a warning says so at start; docs/PERFORMANCE.md has the measured cost). Stored streams stay valid across a change: the state is fp32 either way and continues with the new precision's numbers.", valueName: "precision"))
    var precision: Precision = .fp32

    @Option(help: ArgumentHelp("Diagnostics at this level and above are logged.", valueName: "level"))
    var logLevel: Logger.Level = .info

    @Option(help: ArgumentHelp("Where diagnostics go: stderr (one line each), journal (structured entries with RECUR_* fields), or auto: the journal when stderr is connected to it (JOURNAL_STREAM), else stderr.", valueName: "target"))
    var log: LogTarget = .auto

    /// Where diagnostics go.
    enum LogTarget: String, CaseIterable, ExpressibleByArgument {
        case auto, stderr, journal
    }

    /// The descriptors systemd passed (socket activation, the fd store), taken once at start.
    static let passedDescriptors = ListenedDescriptors.take()

    func validate() throws {
        if socket == nil && !stdin && Self.activationSocket == nil {
            throw ValidationError("give --socket PATH to serve clients, --stdin to read a pipe, or both (or start recurd from recurd.socket)")
        }
        if let socket {
            try Self.validateSocketPath(socket)
        }
        if !stdin {
            if format != nil { throw ValidationError("--format applies to --stdin output only; add --stdin") }
            if keyField { throw ValidationError("--key-field applies to --stdin input only; add --stdin") }
            if expireStdinStreams { throw ValidationError("--expire-stdin-streams applies to --stdin streams only; add --stdin") }
        }
        let maxTopK = EngineOptions().maxTopK
        if !(0...maxTopK).contains(topK) {
            throw ValidationError("--top-k must be in 0...\(maxTopK), got \(topK)")
        }
        if !(64...(1 << 30)).contains(maxLine.bytes) {
            throw ValidationError("--max-line must be between 64 bytes and 1GiB, got \(maxLine.bytes) bytes")
        }
        if !(4096...(1 << 30)).contains(maxQueuedBytes.bytes) {
            throw ValidationError("--max-queued-bytes must be between 4KiB and 1GiB, got \(maxQueuedBytes.bytes) bytes")
        }
        if !(1...1_000_000).contains(maxConnections) {
            throw ValidationError("--max-connections must be in 1...1000000, got \(maxConnections)")
        }
        if maxStreams < 1 {
            throw ValidationError("--max-streams must be at least 1, got \(maxStreams)")
        }
        if cluster != nil {
            if stateDir != nil { throw ValidationError("--cluster keeps streams in PostgreSQL; it cannot be combined with --state-dir") }
            if durability == .off { throw ValidationError("--cluster needs the token log: --durability off would lose a dead node's streams; use strict or batched") }
            if syncInterval != nil { throw ValidationError("--sync-interval applies to --state-dir only: with --cluster, --durability batched leaves flushing to PostgreSQL (synchronous_commit off)") }
            if stdin { throw ValidationError("--cluster serves socket clients; it cannot be combined with --stdin") }
            if let leaseTtl, !(leaseTtl >= 0.5 && leaseTtl <= 3600) {
                throw ValidationError("--lease-ttl must be between 0.5 and 3600 seconds, got \(leaseTtl)")
            }
            if let keyGroups, !(1...65536).contains(keyGroups) {
                throw ValidationError("--key-groups must be in 1...65536, got \(keyGroups)")
            }
            if let node, node.isEmpty || node.utf8.count > 128 || node.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                throw ValidationError("--node must be 1 to 128 bytes without control characters")
            }
            do { _ = try ClusterDatabase(url: cluster!) } catch { throw ValidationError("--cluster: \(error)") }
            if let peerListen {
                guard ClusterForwarder.split(peerListen) != nil else { throw ValidationError("--peer-listen takes HOST:PORT, not '\(peerListen)'") }
                let missing = [("--peer-cert", peerCert), ("--peer-key", peerKey), ("--peer-ca", peerCa)].filter { $0.1 == nil }.map(\.0)
                if !missing.isEmpty {
                    throw ValidationError("--peer-listen needs \(missing.joined(separator: ", ")): peer links are mutual TLS, never in the clear")
                }
                if let peerAdvertise, ClusterForwarder.split(peerAdvertise) == nil {
                    throw ValidationError("--peer-advertise takes HOST:PORT, not '\(peerAdvertise)'")
                }
            } else if let (flag, _) = [("--peer-advertise", peerAdvertise), ("--peer-cert", peerCert), ("--peer-key", peerKey),
                                       ("--peer-ca", peerCa)].first(where: { $0.1 != nil }) {
                throw ValidationError("\(flag) applies to peer links only; add --peer-listen HOST:PORT")
            }
        } else {
            let given: [(String, Bool)] = [("--node", node != nil), ("--lease-ttl", leaseTtl != nil),
                                           ("--key-groups", keyGroups != nil), ("--advertise", advertise != nil),
                                           ("--peer-listen", peerListen != nil), ("--peer-advertise", peerAdvertise != nil),
                                           ("--peer-cert", peerCert != nil), ("--peer-key", peerKey != nil), ("--peer-ca", peerCa != nil)]
            if let (flag, _) = given.first(where: \.1) { throw ValidationError("\(flag) applies to cluster nodes only; add --cluster URL") }
        }
        if stateDir == nil && cluster == nil {
            let given: [(String, Bool)] = [("--durability", durability != nil), ("--checkpoint-interval", checkpointInterval != nil),
                                           ("--sync-interval", syncInterval != nil), ("--replay-history", replayHistory != nil)]
            if let (flag, _) = given.first(where: \.1) {
                throw ValidationError("\(flag) applies to durable streams only; add --state-dir DIR (or --cluster URL)")
            }
        }
        if let stateDir, stateDir.isEmpty { throw ValidationError("--state-dir must name a directory") }
        if let checkpointInterval, checkpointInterval < 1 {
            throw ValidationError("--checkpoint-interval must be at least 1 token, got \(checkpointInterval)")
        }
        if let syncInterval, !(syncInterval > 0 && syncInterval.isFinite) {
            throw ValidationError("--sync-interval must be a positive number of seconds, got \(syncInterval)")
        }
        if let replayHistory, replayHistory < 0 {
            throw ValidationError("--replay-history must be 0 or more tokens, got \(replayHistory)")
        }
        if stateDir != nil {
            // Flags that would change nothing in the chosen mode are refused, as they are without --state-dir.
            let mode = durability ?? .strict
            if syncInterval != nil, mode != .batched {
                throw ValidationError("--sync-interval applies to --durability batched only (this is \(mode.rawValue)\(durability == nil ? ", the default" : "")); add --durability batched")
            }
            if replayHistory != nil, mode == .off {
                throw ValidationError("--replay-history needs the token log, which --durability off does not keep; use --durability strict or batched")
            }
        }
        if expireStdinStreams, idleTimeout == 0 {
            throw ValidationError("--expire-stdin-streams needs an --idle-timeout above 0 (0 never expires)")
        }
        if maxStreamsPerUser < 0 {
            throw ValidationError("--max-streams-per-user must be 0 (no limit) or more, got \(maxStreamsPerUser)")
        }
        if promptRows < 0 {
            throw ValidationError("--prompt-rows must be 0 (plain turns) or more, got \(promptRows)")
        }
        if promptRowsPerStep < 1 {
            throw ValidationError("--prompt-rows-per-step must be at least 1, got \(promptRowsPerStep)")
        }
        if !(0...64).contains(inlineTurns) {
            throw ValidationError("--inline-turns must be from 0 to 64, got \(inlineTurns)")
        }
        if bulkRowsPerStep < 1 {
            throw ValidationError("--bulk-rows-per-step must be at least 1, got \(bulkRowsPerStep)")
        }
        if maxBytesPerSecondPerUser.bytes < 0 {
            throw ValidationError("--max-bytes-per-second-per-user must be 0 (no limit) or more, got \(maxBytesPerSecondPerUser.bytes)")
        }
        if let socketMode {
            if socket == nil { throw ValidationError("--socket-mode applies to --socket only; add --socket") }
            if Self.parseMode(socketMode) == nil {
                throw ValidationError("--socket-mode must be octal permissions from 0 to 777 (e.g. 660 or 666), got '\(socketMode)'")
            }
        }
        if !(idleTimeout >= 0 && idleTimeout.isFinite) {
            throw ValidationError("--idle-timeout must be a number of seconds, 0 or more (0 never expires), got \(idleTimeout)")
        }
        try validateHTTP()
        // The server's own checks, as a backstop for combinations the flags above miss.
        do {
            try daemonConfiguration.validate()
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// A Unix socket address holds about a hundred path bytes (`DaemonSocketPath.maximumBytes`).
    private static func validateSocketPath(_ path: String) throws {
        if path.isEmpty { throw ValidationError("--socket must name a path") }
        if let problem = DaemonSocketPath.lengthProblem(path, named: "--socket path") { throw ValidationError(problem) }
        if path.utf8.contains(0) { throw ValidationError("--socket path contains a NUL byte") }
    }

    /// Fails early, with the path in the message, when the socket could not be created.
    private static func checkSocketDirectory(_ path: String) throws(RecurdError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        var info = stat()
        guard stat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw RecurdError("cannot create the socket '\(path)': the directory '\(directory)' does not exist")
        }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw RecurdError("cannot create the socket '\(path)': the directory '\(directory)' is not writable")
        }
    }

    /// The listening socket systemd passed: the one named "recurd" (FileDescriptorName= of
    /// recurd.socket), or the only one when it has no name.
    static var activationSocket: Int32? {
        let passed = passedDescriptors
        if let named = passed.first(where: { $0.name == "recurd" }) { return named.descriptor }
        // The socket a previous recurd bound itself (--socket) and stored across a restart.
        if let stored = passed.first(where: { $0.name == "recurd-listen" }) { return stored.descriptor }
        if passed.count == 1, passed[0].name == "unknown" || passed[0].name.hasSuffix(".socket") { return passed[0].descriptor }
        return nil
    }

    /// Octal permission bits ("660", "0666"), nil when not octal or above 777.
    static func parseMode(_ text: String) -> UInt32? {
        guard !text.isEmpty, text.count <= 4, let mode = UInt32(text, radix: 8), mode <= 0o777 else { return nil }
        return mode
    }

    /// What the previous recurd handed over through systemd's fd store at its graceful stop:
    /// the state memfd and the connection sockets, as passed (checked when adopted).
    static var inheritance: Inheritance? {
        let entries = passedDescriptors.filter { Inheritance.isHandoverName($0.name) }
            .map { Inheritance.Entry(name: $0.name, descriptor: $0.descriptor) }
        return entries.isEmpty ? nil : Inheritance(entries: entries)
    }

    /// The server's configuration for these flags.
    var daemonConfiguration: RecurdConfiguration {
        var engine = EngineOptions()
        engine.defaultTopK = topK
        engine.maxResidentStreams = maxStreams
        engine.idleTimeout = idleTimeout > 0 ? idleTimeout : nil
        if let checkpointInterval { engine.checkpointInterval = checkpointInterval }
        engine.maxStreamsPerUser = maxStreamsPerUser > 0 ? maxStreamsPerUser : nil
        engine.promptRows = promptRows
        engine.promptRowsPerStep = promptRowsPerStep
        engine.bulkRowsBesidePrompt = bulkRowsPerStep
        engine.inlineTurns = inlineTurns
        engine.precision = precision
        var configuration = RecurdConfiguration()
        // A socket systemd passed wins over --socket (which then names the same path for when
        // recurd runs without its socket unit); systemd owns that file, so it is not removed.
        if let passed = Self.activationSocket {
            configuration.listeningDescriptor = passed
        } else {
            configuration.socketPath = socket
        }
        configuration.modelPath = model
        configuration.inheritance = Self.inheritance
        configuration.stdin = stdin
        configuration.format = format ?? .json
        configuration.keyField = keyField
        configuration.expireStdinStreams = expireStdinStreams
        configuration.maxLineLength = maxLine.bytes
        configuration.maxConnections = maxConnections
        configuration.maxQueuedBytes = maxQueuedBytes.bytes
        configuration.engine = engine
        configuration.stateDirectory = stateDir
        configuration.adminGroup = adminGroup
        configuration.maxBytesPerSecondPerUser = maxBytesPerSecondPerUser.bytes > 0 ? maxBytesPerSecondPerUser.bytes : nil
        configuration.socketMode = socketMode.flatMap(Self.parseMode)
        return configuration
    }

    /// The state store's options from the flags (with `--state-dir`).
    var storeOptions: StateStore.Options {
        var options = StateStore.Options()
        if let durability { options.durability = durability }
        if let syncInterval { options.syncInterval = syncInterval }
        if let replayHistory { options.replayHistory = replayHistory }
        return options
    }

    /// Opens the cluster's PostgreSQL store (`--cluster`) or the SQLite state store in
    /// `--state-dir` for `model` (nil with neither) and logs what it holds.
    func openStore(for model: Model, options: StateStore.Options, logger: Logger) throws -> (any DaemonStateStore)? {
        if cluster != nil { return try openClusterStore(for: model, options: options, logger: logger) }
        guard let directory = stateDir else { return nil }
        let fingerprint = ModelFingerprint(of: model)
        let store: StateStore
        do {
            store = try StateStore(directory: directory, fingerprint: fingerprint, options: options) { problem in
                logger.error("\(problem)", metadata: ["recurd.store": "\(directory)"])
            }
        } catch {
            throw RecurdError("\(error)")
        }
        let count = store.currentStatistics().streams
        logger.info("state store \(directory): \(count) stream\(count == 1 ? "" : "s"), durability \(options.durability.rawValue), model \(fingerprint.modelHex)")
        return store
    }

    func run() async throws {
        var logger = Logger(label: "recurd")
        logger.logLevel = logLevel
        let notifier = SystemdNotifier()

        if let socket, Self.activationSocket == nil { try Self.checkSocketDirectory(socket) }
        Self.raiseDescriptorLimit(connections: maxConnections, logger: logger)
        let loaded: Model
        var pendingStop: @Sendable () -> Int32? = { nil }
        do {
            loaded = try Model(contentsOf: model)
        } catch {
            let reason = "cannot load the model '\(model)': \(error.sentence)"
            // Under systemd the socket stays with clients connecting to it: rather than fail (and
            // be restarted in a loop), refuse them clearly until a good model is installed.
            guard let listening = Self.activationSocket, !stdin else {
                notifier.notify(["STATUS=\(reason)", "ERRNO=22"])
                throw RecurdError(reason)
            }
            let wait = ModelWait(path: model, listening: listening, notifier: notifier, logger: logger)
            guard let waited = await wait.run(firstFailure: reason) else { return }  // stopped while waiting
            loaded = waited.model
            pendingStop = waited.pendingStop
        }
        logger.info("loaded \(model): \(loaded.config.cell.rawValue) \(loaded.config.layers)×\(loaded.config.hiddenSize), \(loaded.vocabulary.kind.rawValue) vocabulary of \(loaded.vocabulary.count), precision \(precision) (kernels: \(precision.kernelPath))")
        if let warning = precision.warning { logger.warning("\(warning)") }
        do {
            var configuration = daemonConfiguration
            var observer = SystemdObserver(notifier: notifier, logger: logger, hangEngineAfter: Self.testHangEngineAfter())
            var storeOptions = storeOptions
            if let address = try httpAddress() {
                // One registry for the process, its factory passed down to the engine and the store.
                let metrics = RecurdMetrics()
                metrics.serving(loaded)
                configuration.engine.metricsFactory = metrics.factory
                storeOptions.metricsFactory = metrics.factory
                let view = try liveView(logger: logger)
                configuration.view = view
                observer.http = (address, metrics, view)
            }
            // A stop that came while the daemon was being built after a wait for the model: the
            // service group traps signals by the time it is ready, so raise it again then.
            observer.afterReady = { [pendingStop] in if let signal = pendingStop() { raise(signal) } }
            try configuration.validate()
            let store = try openStore(for: loaded, options: storeOptions, logger: logger)
            if let clusterStore = store as? PostgresStateStore {
                observer.cluster = try clusterServices(store: clusterStore, configuration: &configuration, logger: logger)
            }
            try await runDaemon(configuration: configuration, model: loaded, store: store, logger: logger, observer: observer)
        } catch let error as RecurdError {
            throw error
        } catch {
            throw RecurdError("\(error)")
        }
    }
}

extension Recurd {
    /// TEST ONLY: `RECURD_TEST_HANG_ENGINE_AFTER=SECONDS` hangs the engine's stepping thread that
    /// long after start, so that the watchdog test can see systemd restart a hung daemon. Read
    /// by debug builds only: a release build ignores it.
    static func testHangEngineAfter() -> Duration? {
        #if DEBUG
        guard let value = getenv("RECURD_TEST_HANG_ENGINE_AFTER").map({ String(cString: $0) }),
              let seconds = Double(value), seconds >= 0, seconds.isFinite else { return nil }
        return .milliseconds(Int64(seconds * 1000))
        #else
        return nil
        #endif
    }
}
