import CoreMetrics
import Foundation
import Logging
import PostgresNIO
import RecurEngine
import RecurStore

/// The cluster's state store (`recurd --cluster URL`): the same token log, checkpoints and
/// evicted streams as the SQLite store, in PostgreSQL, shared by every node. A node serves,
/// and writes, only the streams of the key groups it holds a lease on (`LeaseKeeper`); every
/// write carries the lease's epoch and PostgreSQL refuses it when the epoch is stale
/// (`recur_commit`), so a node that lost a group can never overwrite its new owner's state.
///
/// Writes are queued and applied by one writer thread: whatever arrived while it was busy
/// goes into one call of `recur_commit`, one transaction and one round trip (group commit).
/// Under `strict` a commit waits for PostgreSQL's WAL flush (synchronous_commit on); under
/// `batched` it does not (synchronous_commit off: PostgreSQL flushes within 3 × wal_writer_delay).
public final class PostgresStateStore: DaemonStateStore, @unchecked Sendable {
    /// The store's settings.
    public struct Options: Sendable {
        /// How hard acknowledged tokens are kept (`off` is refused: a cluster node that dies
        /// must leave its streams' tokens to the node that takes over).
        public var durability: Durability = .strict
        /// As `StateStore.Options.replayHistory`.
        public var replayHistory = 10_000
        /// Where the store's metrics go.
        public var metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance
        public init() {}
    }

    /// Counters for `stats` and tests.
    public struct Statistics: Sendable, Equatable {
        public var streams: Int
        public var commits = 0
        public var operations = 0
        public var failures = 0
        /// Operations refused because this node does not hold their group's lease (locally
        /// known, or by PostgreSQL's fence).
        public var fenced = 0
        public var lastError: String?
    }

    public let options: Options
    public let node: String
    public let groupCount: Int
    public var logsTokens: Bool { true }
    let report: @Sendable (String) -> Void
    let logger: Logger
    let writer: PostgresLink
    let reader: PostgresLink
    let readers = DispatchQueue(label: "recur-cluster-read")
    let commitLatency: CoreMetrics.Timer
    let writtenBytes: Counter

    let lock = NSCondition()
    /// (lock) The key groups this node serves, with the epoch of its lease on each.
    var held: [Int: Int64] = [:]
    /// (lock) Held groups being handed off: new requests are refused, queued writes still go.
    var leaving: Set<Int> = []
    /// (lock) Who holds the groups this node does not (node name, its client address), for
    /// the refusal's sentence and for forwarding; filled by the lease keeper.
    var owners: [Int: Owner] = [:]
    /// Another node, as this one knows it from the lease and node tables.
    struct Owner: Sendable {
        var node: String
        /// Where its clients connect (for messages).
        var address: String
        /// Its peer listener, HOST:PORT; empty when it has none.
        var peer: String
    }
    /// (lock) The serving model's hashes.
    var fingerprint: ModelFingerprint
    var queue: [Operation] = []
    /// (lock) Every stream of a held group the store holds or is about to.
    var names: Set<String> = []
    /// (lock) Checkpoints queued but not yet committed, newest per stream, for `load`.
    var pending: [String: (generation: UInt64, snapshot: StreamSnapshot)] = [:]
    var generation: UInt64 = 0
    var consecutiveFailures = 0
    static let checkpointRetries = 50
    var phase = Phase.running
    var statistics = Statistics(streams: 0)
    enum Phase { case running, closing, closed }
    /// Told when PostgreSQL refused a write by the fence: the lease keeper checks its leases at once.
    var onFenced: @Sendable () -> Void = {}

    enum Operation {
        case append(stream: String, offset: Int, tokens: [Int32], pending: [UInt8], owner: UInt32, created: Double,
                    vocabulary: UInt64, done: @Sendable ((any Error)?) -> Void)
        case checkpoint(StreamSnapshot, generation: UInt64, done: (@Sendable ((any Error)?) -> Void)?)
        case rebase(StreamSnapshot, source: String?, generation: UInt64, done: @Sendable ((any Error)?) -> Void)
        case end(stream: String, known: Bool, done: @Sendable ((any Error)?) -> Void)
        /// Writes nothing: answered once everything queued before it is committed (`flush`).
        case barrier(done: @Sendable ((any Error)?) -> Void)

        /// The stream written; nil for a barrier.
        var stream: String? {
            switch self {
            case .append(let stream, _, _, _, _, _, _, _), .end(let stream, _, _): stream
            case .checkpoint(let s, _, _), .rebase(let s, _, _, _): s.stream
            case .barrier: nil
            }
        }

        var done: (@Sendable ((any Error)?) -> Void)? {
            switch self {
            case .append(_, _, _, _, _, _, _, let done), .rebase(_, _, _, let done), .end(_, _, let done),
                 .barrier(let done): done
            case .checkpoint(_, _, let done): done
            }
        }
    }

    /// Connects to `database`, creates or migrates the schema, and fixes the number of key
    /// groups if this is the cluster's first node (`groups`; later nodes read it). No group is
    /// held yet: the lease keeper acquires them.
    public init(database: ClusterDatabase, node: String, groups: Int = KeyGroups.defaultCount,
                fingerprint: ModelFingerprint, options: Options = .init(), logger: Logger,
                report: @escaping @Sendable (String) -> Void = { _ in }) throws {
        guard options.durability != .off else {
            throw ClusterError("a cluster node needs a token log: --durability off cannot be used with --cluster")
        }
        self.options = options
        self.node = node
        self.fingerprint = fingerprint
        self.logger = logger
        self.report = report
        let synchronous = options.durability == .strict ? "on" : "off"
        writer = PostgresLink(database, name: "state store's writer", setup: ["SET synchronous_commit = \(synchronous)"], logger: logger)
        reader = PostgresLink(database, name: "state store's reader", logger: logger)
        commitLatency = Timer(label: StoreMetricNames.commitLatency, factory: options.metricsFactory)
        writtenBytes = Counter(label: StoreMetricNames.writtenBytes, factory: options.metricsFactory)
        groupCount = try Self.migrate(writer, groups: groups)
        do {
            // This node's private streams from an earlier life (recurd discards those of
            // connections that are gone, as with SQLite).
            let rows = try writer.run("SELECT stream FROM recur_checkpoint WHERE node = \(node) UNION SELECT stream FROM recur_log WHERE node = \(node)")
            for row in rows { names.insert(try row.decode(String.self)) }
        } catch {
            throw ClusterError("cannot read this node's private streams: \(PostgresLink.describe(error))")
        }
        let thread = Thread { [self] in writerLoop() }
        thread.name = "recur-cluster-store"
        thread.start()
    }

    /// Creates or brings up the schema, in one transaction under an advisory lock; returns
    /// the cluster's number of key groups.
    static func migrate(_ link: PostgresLink, groups: Int) throws -> Int {
        var count = groups
        do {
            try link.transaction {
                try link.run("SELECT pg_advisory_xact_lock(\(ClusterSchema.migrationLock))")
                for statement in ClusterSchema.create.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                    try link.run(PostgresQuery(unsafeSQL: String(statement)))
                }
                let rows = try link.run("SELECT key, value FROM recur_meta")
                var meta: [String: Int64] = [:]
                for row in rows {
                    let (key, value) = try row.decode((String, Int64).self)
                    meta[key] = value
                }
                if let version = meta["schema"], version > ClusterSchema.version {
                    throw ClusterError("the cluster's schema has version \(version); this recurd reads versions up to \(ClusterSchema.version)")
                }
                try link.run(PostgresQuery(unsafeSQL: ClusterSchema.commitFunction))
                if let fixed = meta["groups"] {
                    count = Int(fixed)
                } else {
                    try link.run("INSERT INTO recur_meta(key, value) VALUES ('groups', \(Int64(groups)))")
                    try link.run("INSERT INTO recur_lease(grp) SELECT generate_series(0, \(Int32(groups - 1))) ON CONFLICT DO NOTHING")
                }
                try link.run("""
                    INSERT INTO recur_meta(key, value) VALUES ('schema', \(ClusterSchema.version))
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """)
            }
        } catch let error as ClusterError {
            throw error
        } catch {
            throw ClusterError("cannot set up the cluster's tables: \(PostgresLink.describe(error))")
        }
        return count
    }

    /// The key group of `stream`; -1 for a private stream (a connection's own, named "~…"),
    /// which lives and dies with its connection on this node: never routed, never fenced, and
    /// kept apart by its node (`recur_log.node`).
    public func group(of stream: String) -> Int {
        stream.hasPrefix(Self.privatePrefix) ? -1 : KeyGroups.group(of: stream, count: groupCount)
    }
    static let privatePrefix = "~"

    // MARK: Groups (the lease keeper's side)

    /// The groups held now, with their epochs.
    public var heldGroups: [Int: Int64] {
        lock.lock()
        defer { lock.unlock() }
        return held
    }

    /// This node now holds `groups` at these epochs: loads the names of their streams (so
    /// that `contains` answers for them), then serves them. A group already held takes its
    /// new epoch. - Throws: when the names cannot be read (the groups are not served).
    func adopt(_ groups: [Int: Int64]) throws {
        let fresh = lock.withLock { groups.keys.filter { held[$0] == nil } }
        var found: [String] = []
        if !fresh.isEmpty {
            let list = fresh.map(Int32.init)
            let rows = try readers.sync {
                try reader.run("SELECT stream FROM recur_checkpoint WHERE grp = ANY(\(list)) UNION SELECT stream FROM recur_log WHERE grp = ANY(\(list))")
            }
            for row in rows { found.append(try row.decode(String.self)) }
        }
        lock.lock()
        for (g, epoch) in groups {
            held[g] = epoch
            leaving.remove(g)
            owners[g] = nil
        }
        names.formUnion(found)
        statistics.streams = names.count
        lock.unlock()
    }

    /// Groups being handed off: new requests for their streams are refused from now on; what
    /// is queued is still written.
    func beginLeaving(_ groups: Set<Int>) {
        lock.withLock { leaving.formUnion(groups.intersection(held.keys)) }
    }

    /// This node no longer holds `groups`: their streams are forgotten (names, queued checkpoints).
    func relinquish(_ groups: Set<Int>) {
        lock.lock()
        defer { lock.unlock() }
        for g in groups {
            held[g] = nil
            leaving.remove(g)
        }
        names = names.filter { !groups.contains(group(of: $0)) }
        pending = pending.filter { !groups.contains(group(of: $0.key)) }
        statistics.streams = names.count
    }

    /// Who holds each group this node does not (from the lease table).
    func learnOwners(_ map: [Int: Owner]) {
        lock.withLock { owners = map }
    }

    /// Waits until everything queued before this call is committed (or failed).
    func flush() {
        let done = DispatchSemaphore(value: 0)
        submit(.barrier(done: { _ in done.signal() }), naming: nil)
        done.wait()
    }

    /// The node that serves `stream` now, when another one does and has a peer listener.
    func peerOwner(of stream: String) -> Owner? {
        let g = group(of: stream)
        guard g >= 0 else { return nil }
        return lock.withLock { owners[g] }.flatMap { $0.peer.isEmpty ? nil : $0 }
    }

    // MARK: StreamStore

    public func refusal(for stream: String) -> String? {
        let g = group(of: stream)
        if g < 0 { return nil }
        lock.lock()
        defer { lock.unlock() }
        if held[g] != nil && !leaving.contains(g) { return nil }
        let quoted = StateStore.quoted(stream)
        if leaving.contains(g) {
            return "stream \(quoted) (key group \(g)) is moving from this node (\(node)) to another; retry in a moment"
        }
        if let owner = owners[g] {
            return "stream \(quoted) (key group \(g)) is served by node \(owner.node) (\(owner.address)), not this one (\(node)); retry there"
        }
        return "stream \(quoted) (key group \(g)) has no owner at the moment (a node is taking it over); retry in a moment"
    }

    public func append(stream: String, offset: Int, tokens: [Int32], pendingText: [UInt8], owner: UInt32, created: Double,
                       completion: @escaping @Sendable ((any Error)?) -> Void) {
        let vocabulary = lock.withLock { fingerprint.vocabulary }
        submit(.append(stream: stream, offset: offset, tokens: tokens, pending: pendingText, owner: owner, created: created,
                       vocabulary: vocabulary, done: completion), naming: stream)
    }

    public func discardStreams(where matches: (String) -> Bool, keeping: Set<String> = []) -> [String] {
        lock.lock()
        let doomed = names.filter { matches($0) && !keeping.contains($0) }.sorted()
        for name in doomed {
            pending[name] = nil
            names.remove(name)
        }
        lock.unlock()
        for name in doomed { submit(.end(stream: name, known: true, done: { _ in }), naming: nil) }
        return doomed
    }

    public func modelChanged(to fingerprint: ModelFingerprint) {
        lock.withLock { self.fingerprint = fingerprint }
    }

    public func rebase(_ snapshot: StreamSnapshot, historyOf source: String?,
                       completion: @escaping @Sendable ((any Error)?) -> Void) {
        let g = lock.withLock {
            generation += 1
            pending[snapshot.stream] = (generation, snapshot)
            return generation
        }
        submit(.rebase(snapshot, source: source, generation: g, done: completion), naming: snapshot.stream)
    }

    public func end(stream: String, completion: @escaping @Sendable ((any Error)?) -> Void) {
        let known = lock.withLock {
            pending[stream] = nil
            return names.remove(stream) != nil
        }
        submit(.end(stream: stream, known: known, done: completion), naming: nil)
    }

    public func checkpoint(_ snapshot: StreamSnapshot) { queueCheckpoint(snapshot, done: nil) }

    public func save(_ snapshot: StreamSnapshot, completion: @escaping @Sendable ((any Error)?) -> Void) {
        queueCheckpoint(snapshot, done: completion)
    }

    private func queueCheckpoint(_ snapshot: StreamSnapshot, done: (@Sendable ((any Error)?) -> Void)?) {
        let g = lock.withLock {
            generation += 1
            pending[snapshot.stream] = (generation, snapshot)
            return generation
        }
        submit(.checkpoint(snapshot, generation: g, done: done), naming: snapshot.stream)
    }

    public var storedStreamCount: Int { lock.withLock { names.count } }

    public func contains(stream: String) -> Bool { lock.withLock { names.contains(stream) } }

    public func load(stream: String, completion: @escaping @Sendable (Result<StoredStream?, any Error>) -> Void) {
        let (queued, fingerprint) = lock.withLock { (pending[stream]?.snapshot, self.fingerprint) }
        readers.async { [self] in
            if let queued {
                completion(.success(StoredStream(snapshot: queued, pendingText: queued.pendingText)))
                return
            }
            do {
                completion(.success(try read(stream, fingerprint: fingerprint)))
            } catch {
                report("stream \(StateStore.quoted(stream)) in the cluster's store cannot be loaded: \(PostgresLink.describe(error))")
                completion(.failure(ClusterError(PostgresLink.describe(error))))
            }
        }
    }

    /// The counters now.
    public func currentStatistics() -> Statistics {
        lock.withLock {
            var s = statistics
            s.streams = names.count
            return s
        }
    }

    public func close() {
        lock.lock()
        guard phase == .running else {
            lock.unlock()
            return
        }
        phase = .closing
        lock.broadcast()
        while phase != .closed { lock.wait() }
        lock.unlock()
        writer.close()
        readers.sync { reader.close() }
    }

    func submit(_ operation: Operation, naming stream: String?) {
        lock.lock()
        if let stream { names.insert(stream) }
        if phase == .running {
            queue.append(operation)
            lock.broadcast()
            lock.unlock()
            return
        }
        lock.unlock()
        if let done = operation.done {
            DispatchQueue.global().async { done(ClusterError("the cluster's state store is closed")) }
        }
    }
}
