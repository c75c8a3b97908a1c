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

    /// The service that keeps this node's leases while the daemon runs.
    func clusterMembership(store: PostgresStateStore, logger: Logger) -> @Sendable (DaemonHandle) -> any Service {
        var options = LeaseKeeper.Options()
        if let leaseTtl { options.ttl = leaseTtl }
        options.clientAddress = advertise ?? socket.map { "unix:\($0)@\(ProcessInfo.processInfo.hostName)" } ?? ""
        options.peerAddress = options.clientAddress
        let database = try! ClusterDatabase(url: cluster!)  // validated
        return { [options] daemon in
            ClusterMembership(keeper: LeaseKeeper(store: store, engine: daemon.engine, database: database,
                                                  options: options, logger: logger), logger: logger)
        }
    }
}

/// The node's membership as a service of the daemon: takes its share of key groups at start,
/// and at a graceful stop (SIGTERM) hands every group off, checkpointed, before the socket
/// server and the engine stop (services stop in reverse order: this one before them).
struct ClusterMembership: Service {
    let keeper: LeaseKeeper
    let logger: Logger

    func run() async throws {
        try await blocking { try keeper.start() }
        logger.info("cluster node serving \(keeper.store.heldGroups.count) of \(keeper.store.groupCount) key groups")
        try? await gracefulShutdown()
        logger.info("leaving the cluster: handing off \(keeper.store.heldGroups.count) key groups")
        try await blocking { keeper.leave() }
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
