import Foundation
import NIOCore
import NIOSSL
import RecurServer

/// The mutual TLS of the peer links (`recurd --peer-cert/--peer-key/--peer-ca`): every node
/// presents a certificate signed by the cluster's CA and accepts only peers that do. Host
/// names are not checked: membership is the CA's signature (docs/CLUSTER.md, "Peer links").
public struct PeerTLS: Sendable {
    let server: NIOSSLContext
    let client: NIOSSLContext

    /// - Throws: `ClusterError` naming the file that cannot be read.
    public init(certificate: String, key: String, ca: String) throws(ClusterError) {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            let roots = NIOSSLTrustRoots.certificates(try NIOSSLCertificate.fromPEMFile(ca))
            var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
            server.certificateVerification = .noHostnameVerification
            server.trustRoots = roots
            server.minimumTLSVersion = .tlsv12
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateChain = chain
            client.privateKey = .privateKey(privateKey)
            client.certificateVerification = .noHostnameVerification
            client.trustRoots = roots
            client.minimumTLSVersion = .tlsv12
            self.server = try NIOSSLContext(configuration: server)
            self.client = try NIOSSLContext(configuration: client)
        } catch {
            throw ClusterError("cannot set up the peer links' TLS (certificate \(certificate), key \(key), CA \(ca)): \(error)")
        }
    }
}

/// The server's way to other nodes: the owner of a stream from the lease table, reached over
/// mutual TLS.
public struct ClusterForwarder: RequestForwarder {
    let store: PostgresStateStore
    let tls: PeerTLS

    public init(store: PostgresStateStore, tls: PeerTLS, ttl: Double, counters: ClusterCounters) {
        self.store = store
        self.tls = tls
        self.ttl = ttl
        self.counters = counters
    }

    public var node: String { store.node }

    public let counters: ClusterCounters

    public func forwarded() { counters.forwarded() }

    public func status() -> ClusterStatus { counters.status() }

    /// Two lease TTLs: a hand-off takes well under one, a dead owner's groups are taken over
    /// within one TTL and a renewal interval.
    public var retryWindow: Duration { .milliseconds(Int64(2000 * ttl)) }
    let ttl: Double

    public func peer(for stream: String) -> PeerAddress? {
        guard let owner = store.peerOwner(of: stream), let (host, port) = Self.split(owner.peer) else { return nil }
        return PeerAddress(node: owner.node, host: host, port: port)
    }

    public func secureClient(_ channel: any Channel, to peer: PeerAddress) throws {
        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls.client, serverHostname: nil))
    }

    public func secureServer(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.server))
    }

    /// HOST:PORT, [V6]:PORT.
    public static func split(_ address: String) -> (String, Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }
}

/// A node's cluster counters for `stats`: the forwards, and the lease keeper's (once it runs).
public final class ClusterCounters: @unchecked Sendable {
    private let lock = NSLock()
    private var forwards = 0
    private var keeper: LeaseKeeper?
    let store: PostgresStateStore

    public init(store: PostgresStateStore) { self.store = store }

    /// The keeper whose counters `stats` shows.
    public func attach(_ keeper: LeaseKeeper) { lock.withLock { self.keeper = keeper } }

    func forwarded() { lock.withLock { forwards += 1 } }

    public func status() -> ClusterStatus {
        let (forwarded, keeper) = lock.withLock { (forwards, self.keeper) }
        let s = keeper?.currentStatus()
        return ClusterStatus(node: store.node, groups: store.heldGroups.count, forwarded: forwarded, handedOff: s?.handoffs ?? 0,
                             takenOver: s?.takeovers ?? 0, lost: s?.groupsLost ?? 0)
    }
}
