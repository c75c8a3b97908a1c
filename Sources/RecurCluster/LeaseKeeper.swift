import CoreMetrics
import Foundation
import Logging
import NIOCore
import PostgresNIO
import RecurEngine
import RecurServer

/// A node's side of key-group ownership (docs/CLUSTER.md, "Leases"). On its own thread, every
/// third of the lease TTL (sooner when another node NOTIFYs `recur_lease`), it:
/// 1. says it is alive (`recur_node.heartbeat`) and reads which nodes are;
/// 2. renews its leases; a group whose lease it lost (its epoch was bumped by a takeover) is
///    dropped at once, without saving (PostgreSQL's fence refuses its writes anyway);
/// 3. compares what it holds with its quota of an even spread over the live nodes
///    (`KeyGroups.quota`), and hands off its surplus: refuses new requests for those groups,
///    checkpoints their streams, waits for the commit, then clears its lease so that a node
///    under its quota can take them;
/// 4. below its quota, takes groups that are free or whose lease expired (a dead node's),
///    bumping each one's epoch, then loads their streams' names and serves them.
/// When it cannot renew (PostgreSQL unreachable) it stops serving every group before its
/// leases could expire: a partitioned node never serves a group another node may have taken.
public final class LeaseKeeper: @unchecked Sendable {
    public struct Options: Sendable {
        /// Seconds a lease lasts without renewal (`recurd --lease-ttl`).
        public var ttl: Double = 5
        /// Where the keeper's metrics go (groups held, hand-offs, takeovers, losses).
        public var metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance
        /// Where other nodes forward requests to this one (its peer listener), and where
        /// clients reach it (its client socket or listener), as shown to clients and operators.
        public var peerAddress = ""
        public var clientAddress = ""
        public init() {}
    }

    /// What this node knows of the cluster (`stats`, `recur cluster status`).
    public struct Status: Sendable {
        public var groupsHeld = 0
        public var handoffs = 0
        public var takeovers = 0
        public var groupsLost = 0
        public var lastRenewal: Double?
        public var serving = false
    }

    /// A place for a keeper made on another thread.
    public final class Box: @unchecked Sendable {
        public var value: LeaseKeeper?
        public init() {}
    }

    public let store: PostgresStateStore
    let engine: StreamEngine
    public let options: Options
    let logger: Logger
    private let link: PostgresLink
    private let condition = NSCondition()
    /// (condition) Wake the loop before its interval (a NOTIFY, a fence refusal).
    private var nudged = false
    private var stopping = false
    /// True until the loop's thread runs, and again once it ended.
    private var stopped = true
    private var leavingCluster = false
    private var status = Status()
    private var listener: Task<Void, Never>?
    private let database: ClusterDatabase
    /// (condition) Monotonic time until which this node's leases are surely valid (the start
    /// of the last successful renewal + TTL).
    private var validUntil = 0.0

    public init(store: PostgresStateStore, engine: StreamEngine, database: ClusterDatabase, options: Options, logger: Logger) {
        self.store = store
        self.engine = engine
        self.options = options
        self.logger = logger
        self.database = database
        link = PostgresLink(database, name: "lease keeper", logger: logger)
        store.onFenced = { [weak self] in self?.nudge() }
        // Every series exists from the start, at 0, so that an alert on a loss needs no absent().
        for name in [ClusterMetricNames.handedOff, ClusterMetricNames.takenOver, ClusterMetricNames.lost] {
            Counter(label: name, factory: options.metricsFactory).increment(by: 0)
        }
        Gauge(label: ClusterMetricNames.keyGroups, factory: options.metricsFactory).record(0)
    }

    /// Registers the node and takes its first share (blocking), then keeps leases on a thread
    /// of its own. - Throws: when PostgreSQL cannot be reached.
    public func start() throws {
        try register()
        tick()
        stopped = false
        let thread = Thread { [self] in loop() }
        thread.name = "recur-leases"
        thread.start()
        let watcher = Thread { [self] in watchDeadline() }
        watcher.name = "recur-lease-deadline"
        watcher.start()
        listener = Task { [self] in await listen() }
    }

    /// Hands every group off (checkpointing its streams) and leaves the cluster: the other
    /// nodes take the groups at once (NOTIFY). Blocks until done. For a graceful stop (SIGTERM).
    public func leave() {
        condition.lock()
        leavingCluster = true
        stopping = true
        condition.broadcast()
        while !stopped { condition.wait() }
        condition.unlock()
        do {
            try link.run("UPDATE recur_node SET leaving = true WHERE node = \(store.node)")
        } catch {
            logger.warning("could not mark this node as leaving: \(PostgresLink.describe(error))")
        }
        handOff(Set(store.heldGroups.keys))
        _ = try? link.run("DELETE FROM recur_node WHERE node = \(store.node)")
        _ = try? link.run("NOTIFY recur_lease")
        listener?.cancel()
        link.close()
    }

    /// Stops keeping leases without handing anything off (they expire).
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !stopped { condition.wait() }
        condition.unlock()
        listener?.cancel()
        link.close()
    }

    public func currentStatus() -> Status {
        condition.lock()
        defer { condition.unlock() }
        var s = status
        s.groupsHeld = store.heldGroups.count
        return s
    }

    func nudge() {
        condition.lock()
        nudged = true
        condition.broadcast()
        condition.unlock()
    }

    private var interval: Double { options.ttl / 3 }

    private func loop() {
        condition.lock()
        while !stopping {
            if !nudged { _ = condition.wait(until: Date(timeIntervalSinceNow: interval)) }
            nudged = false
            if stopping { break }
            condition.unlock()
            tick()
            condition.lock()
        }
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func register() throws {
        do {
            try link.run("""
                INSERT INTO recur_node(node, peer_address, client_address, started, heartbeat)
                VALUES (\(store.node), \(options.peerAddress), \(options.clientAddress), now(), now())
                ON CONFLICT (node) DO UPDATE SET peer_address = excluded.peer_address,
                    client_address = excluded.client_address, started = now(), heartbeat = now(), leaving = false
                """)
            try link.run("NOTIFY recur_lease")
        } catch let error as ClusterError {
            throw error
        } catch {
            throw ClusterError("cannot register node \(store.node) in the cluster: \(PostgresLink.describe(error))")
        }
    }

    private static func uptime() -> Double { ProcessInfo.processInfo.systemUptime }

    /// One round: heartbeat, renewal, hand-offs, takeovers.
    func tick() {
        let start = Self.uptime()
        let held = store.heldGroups
        do {
            let ttl = options.ttl
            try link.run("UPDATE recur_node SET heartbeat = now() WHERE node = \(store.node)")
            let renewed = try link.run("""
                UPDATE recur_lease SET expires = now() + make_interval(secs => \(ttl))
                WHERE node = \(store.node) AND grp = ANY(\(held.keys.map(Int32.init))) RETURNING grp, epoch
                """)
            var kept: [Int: Int64] = [:]
            for row in renewed {
                let (g, epoch) = try row.decode((Int32, Int64).self)
                kept[Int(g)] = epoch
            }
            condition.withLock { validUntil = start + ttl }
            let lost = Set(held.filter { kept[$0.key] != $0.value }.keys)
            if !lost.isEmpty {
                logger.warning("lost the lease of \(lost.count) key groups to another node; their streams are dropped from memory")
                drop(lost)
            }
            var live: [String: (client: String, peer: String)] = [:]
            for row in try link.run("""
                SELECT node, client_address, peer_address FROM recur_node
                WHERE heartbeat > now() - make_interval(secs => \(ttl)) AND NOT leaving
                """) {
                let (node, address, peer) = try row.decode((String, String, String).self)
                live[node] = (address, peer)
            }
            live[store.node] = (options.clientAddress, options.peerAddress)
            var owners: [Int: PostgresStateStore.Owner] = [:]
            var taken = Set<Int>()
            for row in try link.run("SELECT grp, node FROM recur_lease WHERE node IS NOT NULL AND expires > now()") {
                let (g, node) = try row.decode((Int32, String).self)
                guard node != store.node else { continue }
                owners[Int(g)] = .init(node: node, address: live[node]?.client ?? "leaving", peer: live[node]?.peer ?? "")
                taken.insert(Int(g))
            }
            store.learnOwners(owners)
            // Keep up to the quota; hand the surplus off (the highest groups), take free or
            // expired groups (the lowest) up to the quota.
            let quota = KeyGroups.quota(of: store.node, among: Array(live.keys), count: store.groupCount)
            let mine = kept.keys.sorted()
            if mine.count > quota {
                handOff(Set(mine[quota...]))
            } else if mine.count < quota {
                // Each node starts looking at its own place in the ring, so that nodes taking
                // at the same time rarely reach for the same groups.
                let count = store.groupCount
                let names = live.keys.sorted()
                let start = (names.firstIndex(of: store.node) ?? 0) * count / max(1, names.count)
                let free = (0..<count).map { (start + $0) % count }.filter { kept[$0] == nil && !taken.contains($0) }
                if !free.isEmpty { try take(Set(free.prefix(quota - mine.count))) }
            }
            condition.withLock {
                status.lastRenewal = Date().timeIntervalSince1970
                status.serving = true
            }
        } catch {
            logger.warning("cannot renew this node's leases: \(PostgresLink.describe(error))")
            // Stop serving before the leases could expire (a fifth of the TTL to spare).
            let margin = options.ttl / 5
            if !held.isEmpty && Self.uptime() >= condition.withLock({ validUntil }) - margin - interval {
                logger.error("this node cannot reach PostgreSQL and its leases may expire: it stops serving its \(held.count) key groups")
                drop(Set(held.keys))
                condition.withLock { status.serving = false }
            }
        }
    }

    /// Stops serving once the leases may expire before a renewal succeeds (a fifth of the TTL
    /// to spare), even while the keeper's thread is stuck in a query that never returns (a
    /// partition that drops packets rather than refusing them): the store refuses the groups'
    /// streams at once, and the engine drops them.
    private func watchDeadline() {
        let step = min(0.1, options.ttl / 20)
        while !condition.withLock({ stopping }) {
            Thread.sleep(forTimeInterval: step)
            guard Self.uptime() >= condition.withLock({ validUntil }) - options.ttl / 5 else { continue }
            let held = Set(store.heldGroups.keys)
            guard !held.isEmpty else { continue }
            logger.error("this node's leases were not renewed in time (PostgreSQL unreachable?): it stops serving its \(held.count) key groups")
            store.relinquish(held)
            condition.withLock { status.serving = false }
            recordGroupsHeld()
            let count = store.groupCount
            let engine = engine
            Task { await engine.release(streamsWhere: { held.contains(KeyGroups.group(of: $0, count: count)) }, save: false) }
        }
    }

    /// Groups whose lease is gone: forgotten, their streams dropped without saving.
    private func drop(_ groups: Set<Int>) {
        store.relinquish(groups)
        let count = store.groupCount
        wait { await self.engine.release(streamsWhere: { groups.contains(KeyGroups.group(of: $0, count: count)) }, save: false) }
        condition.withLock { status.groupsLost += groups.count }
        Counter(label: ClusterMetricNames.lost, factory: options.metricsFactory).increment(by: groups.count)
        recordGroupsHeld()
    }

    /// Graceful hand-off: refuse, checkpoint, commit, clear the lease, tell the others.
    private func handOff(_ groups: Set<Int>) {
        guard !groups.isEmpty else { return }
        store.beginLeaving(groups)
        let count = store.groupCount
        wait { await self.engine.release(streamsWhere: { groups.contains(KeyGroups.group(of: $0, count: count)) }, save: true) }
        store.flush()
        let epochs = store.heldGroups.filter { groups.contains($0.key) }
        do {
            try link.run("""
                UPDATE recur_lease SET node = NULL, expires = now()
                FROM unnest(\(epochs.keys.map(Int32.init)), \(epochs.keys.map { epochs[$0]! })) AS f(grp, epoch)
                WHERE recur_lease.grp = f.grp AND recur_lease.epoch = f.epoch AND recur_lease.node = \(store.node)
                """)
            try link.run("NOTIFY recur_lease")
        } catch {
            logger.warning("could not clear the leases of \(groups.count) handed-off key groups (they expire instead): \(PostgresLink.describe(error))")
        }
        store.relinquish(groups)
        condition.withLock { status.handoffs += groups.count }
        Counter(label: ClusterMetricNames.handedOff, factory: options.metricsFactory).increment(by: groups.count)
        recordGroupsHeld()
        logger.info("handed off \(groups.count) key groups")
    }

    /// Takes the free or expired groups among `wanted`, bumping their epochs, and serves them.
    private func take(_ wanted: Set<Int>) throws {
        let got = try link.run("""
            UPDATE recur_lease SET node = \(store.node), epoch = epoch + 1,
                expires = now() + make_interval(secs => \(options.ttl)), acquired = now()
            WHERE grp = ANY(\(wanted.map(Int32.init))) AND (node IS NULL OR node = \(store.node) OR expires < now())
            RETURNING grp, epoch
            """)
        var groups: [Int: Int64] = [:]
        for row in got {
            let (g, epoch) = try row.decode((Int32, Int64).self)
            groups[Int(g)] = epoch
        }
        guard !groups.isEmpty else { return }
        try store.adopt(groups)
        _ = try? link.run("NOTIFY recur_lease")  // the others learn the new owner now
        condition.withLock { status.takeovers += groups.count }
        Counter(label: ClusterMetricNames.takenOver, factory: options.metricsFactory).increment(by: groups.count)
        recordGroupsHeld()
        logger.info("took \(groups.count) key groups")
    }

    private func recordGroupsHeld() {
        Gauge(label: ClusterMetricNames.keyGroups, factory: options.metricsFactory).record(store.heldGroups.count)
    }

    /// Runs `body` from this (non-concurrency) thread and waits for it.
    private func wait(_ body: @escaping @Sendable () async -> Void) {
        let done = DispatchSemaphore(value: 0)
        Task {
            await body()
            done.signal()
        }
        done.wait()
    }

    /// LISTEN recur_lease: a NOTIFY (a node joined, left or handed off) wakes the loop. NOTIFY
    /// has no replay, so polling stays the fallback; a broken listener reconnects.
    private func listen() async {
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(configuration: database.configuration, id: 0, logger: logger)
                defer { Task { try? await connection.close() } }
                try await connection.listen(on: "recur_lease") { notifications in
                    for try await _ in notifications { nudge() }
                }
            } catch {
                if Task.isCancelled { return }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
