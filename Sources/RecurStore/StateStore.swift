import CoreMetrics
import Foundation
import GRDB
import RecurEngine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The SQLite state store (`recurd --state-dir`): the token log, stream checkpoints and the
/// streams evicted from memory, in `DIR/streams.sqlite` (WAL mode). See docs/ENGINE.md,
/// "Durability", for the tables and the policies.
///
/// Writes are queued and applied by one writer thread: whatever arrived while it was busy goes
/// into the next transaction (group commit: one transaction and, under `strict`, one fsync
/// for many streams). Reads (`load`) run on their own connections, beside the writer.
public final class StateStore: StreamStore, @unchecked Sendable {
    /// The store's settings.
    public struct Options: Sendable {
        /// How hard acknowledged tokens are kept.
        public var durability: Durability = .strict
        /// Streams keep their log from their start while they have absorbed at most this many
        /// tokens, so that a model change can rebuild them by replay; beyond, a checkpoint
        /// drops the log before it.
        public var replayHistory = 10_000
        /// `batched`: seconds between fsyncs.
        public var syncInterval: Double = 1
        /// Seconds to wait for another daemon to release the directory.
        public var lockWait: Double = 10
        /// Caps the database at this many pages (SQLite's max_page_count), after which writes
        /// fail as on a full disk; nil = no cap. Tests use it to exercise write failures.
        public var maximumPages: Int?
        /// Where the store's metrics go (commit latency, bytes written; docs/OBSERVABILITY.md);
        /// the default discards them.
        public var metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance

        /// The defaults: strict, 10 000 tokens of history, 1 s sync interval.
        public init() {}
    }

    /// Counters for `stats` and tests.
    public struct Statistics: Sendable, Equatable {
        /// Streams the store holds (resident ones included once they logged or checkpointed).
        public var streams: Int
        /// Transactions committed (each one fsync under `strict`).
        public var commits: Int
        /// Operations written (appends, checkpoints, resets, forks, ends).
        public var operations: Int
        /// Transactions that failed (a full disk, say), and the last failure.
        public var failures = 0
        public var lastError: String?
    }

    /// The directory given.
    public let directory: String
    /// Where unreadable records are reported.
    let report: @Sendable (String) -> Void
    /// (lock) Streams whose unreadable record was reported already.
    var reportedUnreadable: Set<String> = []
    /// The settings given.
    public let options: Options
    /// Commit latency and bytes written, recorded by the writer thread.
    let metrics: StoreMetrics
    public var logsTokens: Bool { options.durability != .off }

    let pool: DatabasePool
    /// (lock) The serving model's hashes.
    var fingerprint: ModelFingerprint
    var fingerprintForLoads: ModelFingerprint {
        lock.lock()
        defer { lock.unlock() }
        return fingerprint
    }
    /// (lock) The state directory's lock, held until `close`; -1 after.
    var lockDescriptor: Int32
    let readers = DispatchQueue(label: "recur-store-read", attributes: .concurrent)

    let lock = NSCondition()
    /// (lock) Waiting for the writer.
    var queue: [Operation] = []
    /// (lock) Every stream the store holds or is about to.
    var names: Set<String>
    /// (lock) Checkpoints queued but not yet committed, newest per stream, for `load`.
    var pending: [String: (generation: UInt64, snapshot: StreamSnapshot)] = [:]
    var generation: UInt64 = 0
    /// (lock) Failed transactions in a row; checkpoints are retried this many times.
    var consecutiveFailures = 0
    static let checkpointRetries = 50
    var phase = Phase.running
    var statistics: Statistics
    enum Phase { case running, closing, closed }

    enum Operation {
        case append(stream: String, offset: Int, tokens: [Int32], pending: [UInt8], owner: UInt32, created: Double,
                    vocabulary: UInt64, done: @Sendable ((any Error)?) -> Void)
        /// `done` nil: a periodic checkpoint, retried after a failure; otherwise a stream leaving
        /// the engine's memory (`save`), whose failure goes back to the engine (which keeps it).
        case checkpoint(StreamSnapshot, generation: UInt64, done: (@Sendable ((any Error)?) -> Void)?)
        case rebase(StreamSnapshot, source: String?, generation: UInt64, done: @Sendable ((any Error)?) -> Void)
        /// `known`: the store held the stream before, so a failed end leaves it counted.
        case end(stream: String, known: Bool, done: @Sendable ((any Error)?) -> Void)
    }

    /// Opens (creating if needed) the store in `directory` for a model with `fingerprint`.
    /// - Throws: `StoreError` when the directory cannot be made private, is locked by another
    ///   daemon, or holds a database this version cannot read.
    /// - Parameter report: hears, as a sentence, of every stored stream found unreadable (once
    ///   per stream) and of anything else the store ignores; recurd logs it as an error.
    public init(directory: String, fingerprint: ModelFingerprint, options: Options = .init(),
                report: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.report = report
        self.directory = directory
        self.options = options
        metrics = StoreMetrics(factory: options.metricsFactory)
        self.fingerprint = fingerprint
        lockDescriptor = try StateDirectory.prepare(directory, lockWait: options.lockWait)
        let path = directory + "/streams.sqlite"
        do {
            try StateDirectory.createPrivateFile(path)
            var configuration = Configuration()
            let synchronous = options.durability == .strict ? "FULL" : "NORMAL"
            let maximumPages = options.maximumPages
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
                if let maximumPages { try db.execute(sql: "PRAGMA max_page_count = \(maximumPages)") }
            }
            configuration.maximumReaderCount = 4
            configuration.label = "recur-store"
            pool = try DatabasePool(path: path, configuration: configuration)
            try pool.write { db in try Self.migrate(db) }
            let known = try pool.read { db in
                try DatabaseValue.fetchAll(db, sql: "SELECT stream FROM checkpoint UNION SELECT stream FROM log")
            }
            names = []
            var unnamed: [String] = []
            for value in known {
                if case .string(let name) = value.storage { names.insert(name) } else { unnamed.append(StoredValue.describe(value)) }
            }
            if !unnamed.isEmpty {
                // Nobody can name such a stream: it is left alone, and said once.
                report("the state store holds \(unnamed.count) streams whose name is not text (\(unnamed.prefix(3).joined(separator: ", "))); they are ignored")
            }
        } catch {
            StateDirectory.release(lockDescriptor)
            if let error = error as? StoreError { throw error }
            throw StoreError("cannot open the state store '\(path)': \(error)")
        }
        statistics = Statistics(streams: names.count, commits: 0, operations: 0)
        let thread = Thread { [self] in writerLoop() }
        thread.name = "recur-store"
        thread.start()
    }

    deinit {
        if lockDescriptor >= 0 { StateDirectory.release(lockDescriptor) }
    }

    /// 1: the first layout. 2: log rows carry the stream's creation time (`created`), so a
    /// stream rebuilt from its log after a crash keeps it.
    static let schemaVersion: Int64 = 2

    /// Creates the tables of a new store, or brings an older store's up to `schemaVersion`
    /// (in the caller's transaction); refuses a newer one.
    static func migrate(_ db: Database) throws {
        try db.execute(sql: "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        let version = try Row.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema'").map { row throws(StoreError) in
            try StoredValue(row, "value", in: "the store's schema version").integer(in: 1...Int64.max)
        }
        if let version, version > schemaVersion {
            throw StoreError("the state store has schema version \(version); this recurd reads versions up to \(schemaVersion)")
        }
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS checkpoint(
                stream TEXT PRIMARY KEY, model INTEGER NOT NULL, vocabulary INTEGER NOT NULL,
                "offset" INTEGER NOT NULL, record BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS log(
                id INTEGER PRIMARY KEY, stream TEXT NOT NULL, vocabulary INTEGER NOT NULL, owner INTEGER NOT NULL,
                "offset" INTEGER NOT NULL, end_offset INTEGER NOT NULL, tokens BLOB NOT NULL, pending BLOB NOT NULL,
                created REAL);
            CREATE INDEX IF NOT EXISTS log_by_stream ON log(stream, id);
            """)
        if try !db.columns(in: "log").contains(where: { $0.name == "created" }) {
            // Schema 1. Rows logged before have no creation time (NULL): their streams keep
            // the one of their checkpoint, if any.
            try db.execute(sql: "ALTER TABLE log ADD COLUMN created REAL")
        }
        try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)", arguments: [schemaVersion])
    }

    // MARK: StreamStore (called under the engine's lock: queue and return)

    public func append(stream: String, offset: Int, tokens: [Int32], pendingText: [UInt8], owner: UInt32, created: Double,
                       completion: @escaping @Sendable ((any Error)?) -> Void) {
        lock.lock()
        let vocabulary = fingerprint.vocabulary
        lock.unlock()
        submit(.append(stream: stream, offset: offset, tokens: tokens, pending: pendingText, owner: owner, created: created,
                       vocabulary: vocabulary, done: completion), naming: stream)
    }

    /// Deletes every stored stream whose name `matches`, except those in `keeping`; returns
    /// their names. recurd deletes the private streams of connections that are gone this way
    /// at start (their text is secret and no connection can own them again). Queued like an
    /// `end` of each: later operations on the same names apply after it.
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
        lock.lock()
        defer { lock.unlock() }
        self.fingerprint = fingerprint
    }

    public func rebase(_ snapshot: StreamSnapshot, historyOf source: String?,
                       completion: @escaping @Sendable ((any Error)?) -> Void) {
        lock.lock()
        generation += 1
        pending[snapshot.stream] = (generation, snapshot)
        let g = generation
        lock.unlock()
        submit(.rebase(snapshot, source: source, generation: g, done: completion), naming: snapshot.stream)
    }

    public func end(stream: String, completion: @escaping @Sendable ((any Error)?) -> Void) {
        lock.lock()
        pending[stream] = nil
        let known = names.remove(stream) != nil
        lock.unlock()
        submit(.end(stream: stream, known: known, done: completion), naming: nil)
    }

    public func checkpoint(_ snapshot: StreamSnapshot) {
        queueCheckpoint(snapshot, done: nil)
    }

    public func save(_ snapshot: StreamSnapshot, completion: @escaping @Sendable ((any Error)?) -> Void) {
        queueCheckpoint(snapshot, done: completion)
    }

    private func queueCheckpoint(_ snapshot: StreamSnapshot, done: (@Sendable ((any Error)?) -> Void)?) {
        lock.lock()
        generation += 1
        pending[snapshot.stream] = (generation, snapshot)
        let g = generation
        lock.unlock()
        submit(.checkpoint(snapshot, generation: g, done: done), naming: snapshot.stream)
    }

    public var storedStreamCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return names.count
    }

    public func contains(stream: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return names.contains(stream)
    }

    public func load(stream: String, completion: @escaping @Sendable (Result<StoredStream?, any Error>) -> Void) {
        lock.lock()
        let queued = pending[stream]?.snapshot
        lock.unlock()
        readers.async { [self] in
            if let queued {
                // Evicted moments ago and not written yet: the queued checkpoint is the stream.
                completion(.success(StoredStream(snapshot: queued, pendingText: queued.pendingText)))
                return
            }
            do {
                let found = try pool.read { db in try read(stream, db) }
                completion(.success(found))
            } catch {
                lock.lock()
                let first = reportedUnreadable.insert(stream).inserted
                lock.unlock()
                if first { report("stream \(Self.quoted(stream)) in the state store cannot be loaded: \(error)") }
                completion(.failure(error))
            }
        }
    }

    /// The counters now.
    public func currentStatistics() -> Statistics {
        lock.lock()
        defer { lock.unlock() }
        var s = statistics
        s.streams = names.count
        return s
    }

    /// Writes everything queued, folds the WAL into the database file, and stops the writer.
    /// Later operations fail. Call once the engine has shut down (after its final checkpoints).
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
        try? pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        try? pool.close()
        lock.lock()
        StateDirectory.release(lockDescriptor)
        lockDescriptor = -1
        lock.unlock()
    }

    private func submit(_ operation: Operation, naming stream: String?) {
        lock.lock()
        if let stream { names.insert(stream) }
        if phase == .running {
            queue.append(operation)
            lock.broadcast()
            lock.unlock()
            return
        }
        lock.unlock()
        let closed = StoreError("the state store is closed")
        switch operation {
        case .append(_, _, _, _, _, _, _, let done), .rebase(_, _, _, let done), .end(_, _, let done),
             .checkpoint(_, _, let done?):
            DispatchQueue.global().async { done(closed) }
        case .checkpoint(_, _, nil):
            break
        }
    }
}

/// recurd opens a `StateStore` for `--state-dir` and hands it to `runDaemon`.
extension StateStore: DaemonStateStore {}
