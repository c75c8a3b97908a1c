import Foundation
import Logging
import RecurCluster
import RecurCore
import RecurEngine
import RecurServer
import RecurStore
import ServiceLifecycle

extension Recurd {
    /// This node's name: `--node`, else the host name.
    var nodeName: String {
        if let node { return node }
        return ProcessInfo.processInfo.hostName
    }

    /// Opens the cluster's store in PostgreSQL for `model` (`--cluster`).
    func openClusterStore(for model: Model, options: StateStore.Options, logger: Logger) throws -> PostgresStateStore {
        let database = try ClusterDatabase(url: cluster!)
        var clusterOptions = PostgresStateStore.Options()
        clusterOptions.durability = options.durability
        clusterOptions.replayHistory = options.replayHistory
        clusterOptions.metricsFactory = options.metricsFactory
        let fingerprint = ModelFingerprint(of: model)
        do {
            let store = try PostgresStateStore(database: database, node: nodeName, groups: keyGroups ?? KeyGroups.defaultCount,
                                               fingerprint: fingerprint, options: clusterOptions, logger: logger) { problem in
                logger.error("\(problem)", metadata: ["recurd.cluster": "\(database)"])
            }
            logger.info("cluster \(database): node \(nodeName), \(store.groupCount) key groups, durability \(options.durability.rawValue), model \(fingerprint.modelHex)")
            return store
        } catch {
            throw RecurdError("\(error)")
        }
    }

    /// The services of a cluster node: its peer listener (with `--peer-listen`, which also
    /// makes this node forward requests: `configuration.forwarder`) and its membership, which
    /// keeps its leases. The peer listener comes first: services stop in reverse order, so at
    /// a graceful stop the node hands its groups off while it still serves forwarded requests.
    func clusterServices(store: PostgresStateStore, configuration: inout RecurdConfiguration,
                         logger: Logger) throws -> @Sendable (DaemonHandle) -> [any Service] {
        var options = LeaseKeeper.Options()
        if let leaseTtl { options.ttl = leaseTtl }
        options.metricsFactory = configuration.engine.metricsFactory
        options.clientAddress = advertise ?? socket.map { "unix:\($0)@\(ProcessInfo.processInfo.hostName)" } ?? ""
        let database = try ClusterDatabase(url: cluster!)
        let bound = PeerBinding()
        let counters = ClusterCounters(store: store)
        configuration.clusterStatus = { counters.status() }
        var peer: (host: String, port: Int, tls: PeerTLS)?
        if let peerListen, let (host, port) = ClusterForwarder.split(peerListen) {
            let tls = try PeerTLS(certificate: peerCert!, key: peerKey!, ca: peerCa!)
            configuration.forwarder = ClusterForwarder(store: store, tls: tls, ttl: options.ttl, counters: counters)
            peer = (host, port, tls)
        }
        let advertised = peerAdvertise
        let daemonConfiguration = configuration
        return { [options, peer] daemon in
            var services: [any Service] = []
            if let peer, let forwarder = daemonConfiguration.forwarder {
                services.append(PeerServer(engine: daemon.engine, configuration: daemonConfiguration, forwarder: forwarder,
                                           host: peer.host, port: peer.port, logger: logger) { host, port in
                    bound.set(advertised ?? (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"))
                })
            } else {
                bound.set("")
            }
            services.append(ClusterMembership(store: store, engine: daemon.engine, database: database, options: options,
                                              peerAddress: bound, counters: counters,
                                              logger: logger))
            return services
        }
    }
}

/// The peer listener's address once it is bound (the port is known only then, when 0 was asked).
final class PeerBinding: @unchecked Sendable {
    private let lock = NSCondition()
    private var address: String?

    func set(_ value: String) {
        lock.lock()
        address = value
        lock.broadcast()
        lock.unlock()
    }

    /// Blocks until set.
    func wait() -> String {
        lock.lock()
        defer { lock.unlock() }
        while address == nil { lock.wait() }
        return address!
    }
}

/// The node's membership as a service of the daemon: takes its share of key groups at start,
/// and at a graceful stop (SIGTERM) hands every group off, checkpointed, before the socket
/// server and the engine stop (services stop in reverse order: this one before them).
struct ClusterMembership: Service {
    let store: PostgresStateStore
    let engine: StreamEngine
    let database: ClusterDatabase
    let options: LeaseKeeper.Options
    let peerAddress: PeerBinding
    let counters: ClusterCounters
    let logger: Logger

    func run() async throws {
        let keeper = LeaseKeeper.Box()
        try await blocking { [self] in
            var options = options
            options.peerAddress = peerAddress.wait()
            keeper.value = LeaseKeeper(store: store, engine: engine, database: database, options: options, logger: logger)
            counters.attach(keeper.value!)
            try keeper.value!.start()
        }
        let keeperValue = keeper.value!
        logger.info("cluster node serving \(store.heldGroups.count) of \(store.groupCount) key groups")
        try? await gracefulShutdown()
        logger.info("leaving the cluster: handing off \(store.heldGroups.count) key groups")
        try await blocking { keeperValue.leave() }
    }

    /// Runs `body` on a thread of its own (it blocks on PostgreSQL).
    private func blocking(_ body: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread {
                do {
                    try body()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }.start()
        }
    }
}
