import RecurEngine
import RecurSocketPath

/// Everything `recurd` is told by its flags; `runDaemon(configuration:model:logger:)` runs it.
public struct RecurdConfiguration: Sendable {
    /// How stdin mode prints events.
    public enum OutputFormat: String, Sendable, CaseIterable {
        /// One JSON event per line, the same objects the socket sends.
        case json
        /// `offset<TAB>token<TAB>logprob<TAB>tok:p,tok:p,...`, readable like KenLM's query output.
        case tsv
    }

    /// Where the socket server listens; nil runs no socket server.
    public var socketPath: String? = nil
    /// An already bound, listening Unix stream socket to serve on instead of binding
    /// `socketPath` (socket activation hands one over as fd 3).
    public var listeningDescriptor: Int32? = nil
    /// Connections the previous process handed over at its graceful stop (recurd under systemd:
    /// from the fd store), served on from where they were.
    public var inheritance: Inheritance? = nil
    /// The model file, reloaded on SIGHUP; nil leaves SIGHUP's default action (termination).
    public var modelPath: String? = nil
    /// Read text from stdin and print events to stdout; the daemon ends at end of input.
    public var stdin = false
    /// The stdin output format.
    public var format: OutputFormat = .json
    /// Stdin lines are `key<TAB>text`, one stream per key (logs of many hosts through one pipe).
    public var keyField = false
    /// The stream stdin feeds when `keyField` is off.
    public var stdinStream = "stdin"
    /// Whether `engine.idleTimeout` expires the stdin pipeline's streams too. By default a
    /// stdin stream lives as long as its input (`tail -f` of a log quiet for hours keeps its
    /// state); idle expiry is for socket clients' streams.
    public var expireStdinStreams = false
    /// Longest request line (and stdin key-field line) in bytes; longer lines get too_long.
    public var maxLineLength = 1 << 20
    /// Connections served at once; one more is told so and closed.
    public var maxConnections = 1024
    /// Bytes held for one connection: request lines read but not yet served plus replies not
    /// yet taken by its socket. Beyond it the connection is not read until the client reads
    /// (`--max-queued-bytes`); it also sizes the pieces a long feed is stepped in.
    public var maxQueuedBytes = 256 * 1024
    /// Members of this group (by name), like root, see and may use every stream and are not
    /// held to the per-user limits; nil: root only.
    public var adminGroup: String? = nil
    /// Request bytes per second one Unix user may send, over all of its connections; a user
    /// sending faster is slowed down (its connections are not read meanwhile). nil = no limit.
    public var maxBytesPerSecondPerUser: Int? = nil
    /// Mode of the socket file (e.g. 0o666 so every local user may connect); nil leaves it as
    /// the umask made it.
    public var socketMode: UInt32? = nil
    /// How long a graceful shutdown (SIGTERM, SIGINT) may take before in-flight work is cancelled.
    public var shutdownGracePeriod: Duration = .seconds(10)
    /// The engine's limits; `engine.defaultTopK` is the k used when a request gives none.
    public var engine = EngineOptions()
    /// Where streams are kept durably (`--state-dir`; the store itself is opened by the
    /// executable and passed to `runDaemon`); nil keeps them in memory only. The live view's
    /// token file goes there when there is no socket to put it beside.
    public var stateDirectory: String? = nil
    /// The live view's tokens (`recurd --http`); nil: no HTTP surface, and `view` says so.
    public var view: ViewAccess? = nil
    /// A cluster node's way to the owners of streams it does not serve: a request refused with
    /// `moved` is forwarded there over a peer link and its replies relayed (nil: not a cluster).
    public var forwarder: (any RequestForwarder)? = nil
    /// A cluster node's counters for `stats` (nil: not a cluster).
    public var clusterStatus: (@Sendable () -> ClusterStatus)? = nil

    /// The socket path the documentation and `recur connect` use by default.
    public static let defaultSocketPath = DaemonSocketPath.defaultPath

    /// The defaults: no socket, no stdin (set at least one), JSON output, 1 MiB lines, 1024 connections.
    public init() {}

    /// The request bounds this configuration implies.
    public var requestLimits: RequestLimits {
        RequestLimits(maxTopK: engine.maxTopK, maxPredict: engine.maxPredict)
    }

    /// Checks the combination of settings; the message says what to change.
    public func validate() throws(ConfigurationError) {
        if socketPath == nil, listeningDescriptor == nil, !stdin {
            throw ConfigurationError("nothing to serve: give a socket path, a listening descriptor, or stdin mode")
        }
        if let socketPath, listeningDescriptor != nil {
            throw ConfigurationError("give either the socket path '\(socketPath)' or a listening descriptor, not both")
        }
        if let socketPath, let problem = DaemonSocketPath.lengthProblem(socketPath) {
            throw ConfigurationError(problem)
        }
        if keyField, !stdin {
            throw ConfigurationError("the key field applies to stdin mode only")
        }
        if expireStdinStreams, !stdin {
            throw ConfigurationError("expiring stdin streams applies to stdin mode only")
        }
        guard maxLineLength >= 64 else {
            throw ConfigurationError("the maximum line length \(maxLineLength) is too small; use at least 64 bytes")
        }
        guard maxQueuedBytes >= 4096 else {
            throw ConfigurationError("the per-connection queue bound \(maxQueuedBytes) is too small; use at least 4096 bytes")
        }
        guard maxConnections >= 1 else {
            throw ConfigurationError("the connection limit \(maxConnections) must be at least 1")
        }
        guard engine.defaultTopK >= 0, engine.defaultTopK <= engine.maxTopK else {
            throw ConfigurationError("the default k \(engine.defaultTopK) must be between 0 and the maximum k \(engine.maxTopK)")
        }
        if let limit = engine.maxStreamsPerUser, limit < 1 {
            throw ConfigurationError("the per-user stream limit \(limit) must be at least 1")
        }
        if let rate = maxBytesPerSecondPerUser, rate < 1 {
            throw ConfigurationError("the per-user byte rate \(rate) must be at least 1 byte per second")
        }
        if let socketMode, socketMode > 0o777 {
            throw ConfigurationError("the socket mode \(String(socketMode, radix: 8)) must be an octal permission from 0 to 777")
        }
        if let adminGroup {
            _ = try AccessPolicy(adminGroupNamed: adminGroup)
        }
        if let problem = StreamName.problem(with: stdinStream, field: "stdin stream") {
            throw ConfigurationError(problem)
        }
    }
}

/// A configuration that cannot run, as a sentence the user can act on.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The sentence.
    public var message: String
    /// An error saying `message`.
    public init(_ message: String) { self.message = message }
    /// The sentence.
    public var description: String { message }
}
