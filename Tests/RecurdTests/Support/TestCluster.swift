import Foundation
#if canImport(Glibc)
import Glibc
#endif
import RecurTestSupport
import XCTest

/// A cluster for one test: a private PostgreSQL server (`PostgresServer`), a CA and a node
/// certificate made with openssl (and a rogue certificate from another CA), and real recurd
/// nodes, each in a directory of its own with its socket at DIR/NODE/d.sock.
final class TestCluster: @unchecked Sendable {
    let postgres: PostgresServer
    let directory: URL
    let groups = 64
    let ttl = 2.0
    private(set) var nodes: [String: Daemon] = [:]
    private let test: XCTestCase

    init(_ test: XCTestCase) throws {
        self.test = test
        postgres = try PostgresServer()
        directory = try makeWorkDirectory(test)
        try makeCertificates()
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Starts node `name` (with a peer listener unless `peer` is false) and waits until its
    /// socket accepts; `url` replaces the database's (a proxy).
    @discardableResult
    func start(_ name: String, peer: Bool = true, url: String? = nil, extra: [String] = []) throws -> Daemon {
        let dir = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var arguments = ["--cluster", url ?? postgres.url, "--node", name, "--lease-ttl", "\(ttl)", "--key-groups", "\(groups)",
                         "--checkpoint-interval", "16"]
        if peer {
            arguments += ["--peer-listen", "127.0.0.1:0", "--peer-cert", path("node.pem"), "--peer-key", path("node.key"),
                          "--peer-ca", path("ca.pem")]
        }
        let daemon = try Daemon.start(test, arguments: arguments + extra, in: dir)
        nodes[name] = daemon
        return daemon
    }

    /// Live leases per node.
    func leases() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for line in try postgres.psql("SELECT node || ' ' || count(*) FROM recur_lease WHERE node IS NOT NULL AND expires > now() GROUP BY node").split(separator: "\n") {
            let parts = line.split(separator: " ")
            out[String(parts[0])] = Int(parts[1])!
        }
        return out
    }

    /// Waits until `names` hold every group, evenly (⌊G/n⌋ or ⌈G/n⌉ each), and no one else holds any.
    func waitBalanced(_ names: [String], timeout: Double = 30) throws {
        let low = groups / names.count, high = (groups + names.count - 1) / names.count
        var last: [String: Int] = [:]
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            last = try leases()
            if Set(last.keys) == Set(names), last.values.allSatisfy({ (low...high).contains($0) }), last.values.reduce(0, +) == groups {
                return
            }
            usleep(50_000)
        }
        throw TestFailure("the cluster did not balance over \(names) within \(timeout) s: \(last)")
    }

    /// The node holding the lease of `stream`'s group.
    func owner(of stream: String) throws -> String {
        try postgres.psql("SELECT node FROM recur_lease WHERE grp = \(group(of: stream))").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// KeyGroups.group(of:count:), as docs/CLUSTER.md gives it.
    func group(of stream: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in stream.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return Int(hash % UInt64(groups))
    }

    private func makeCertificates() throws {
        func openssl(_ arguments: [String]) throws {
            let result = try ChildProcess(URL(fileURLWithPath: "/usr/bin/openssl"), arguments, in: directory, stdin: Data()).wait(timeout: 30)
            guard result.status == 0 else { throw TestFailure("openssl \(arguments.joined(separator: " ")) failed: \(result.stderr)") }
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        for ca in ["ca", "rogue-ca"] {
            try openssl(["req", "-x509"] + ec + ["-keyout", path("\(ca).key"), "-out", path("\(ca).pem"), "-days", "2", "-subj", "/CN=recur test \(ca)"])
        }
        try Data("extendedKeyUsage=serverAuth,clientAuth\n".utf8).write(to: URL(fileURLWithPath: path("ext.cnf")))
        for (name, ca) in [("node", "ca"), ("rogue", "rogue-ca")] {
            try openssl(["req"] + ec + ["-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=recur \(name)"])
            try openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
                         "-CAcreateserial", "-out", path("\(name).pem"), "-days", "2", "-extfile", path("ext.cnf")])
        }
    }
}

/// A value shared between the test's client threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// A process in a process group of its own (posix_spawn, not Process: socat forks a child per
/// connection, and Foundation would wait for them too); `kill` ends the whole group.
final class ProcessGroup: @unchecked Sendable {
    let pid: pid_t

    init(_ program: String, _ arguments: [String]) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, program, &actions, &attributes, argv, environ)
        guard spawned == 0 else { throw TestFailure("cannot start \(program): errno \(spawned)") }
        self.pid = pid
    }

    /// `number` to the whole group.
    func signal(_ number: Int32) { _ = Glibc.kill(-pid, number) }

    /// SIGKILL to the group, then reaps the leader.
    func kill() {
        _ = Glibc.kill(-pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    deinit { _ = Glibc.kill(-pid, SIGKILL) }
}
