import ArgumentParser
import CLibPQ
import RecurCore
import Foundation

/// `recur cluster status`: what a cluster of recurd nodes looks like in its PostgreSQL
/// (docs/CLUSTER.md, "Operations"), read with libpq.
struct Cluster: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect a cluster of recurd nodes (recurd --cluster).",
        subcommands: [Status.self])

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the cluster's nodes, the key groups each holds, their leases and how late each node's heartbeat is.",
            discussion: """
                Reads the cluster's tables in PostgreSQL (the URL the nodes were given with --cluster). \
                A node is live while its heartbeat is younger than the lease TTL; groups with no live lease \
                are being taken over. Exits 1 when the database holds no cluster, 3 when some group has no live lease.
                """)

        @Option(help: ArgumentHelp("The cluster's PostgreSQL URL, as given to recurd --cluster.", valueName: "url"))
        var cluster: String

        @Flag(help: "Print one JSON object instead of the table.")
        var json = false

        @Option(help: ArgumentHelp("Wait up to this many seconds for every group to have a live lease (a node starting, or taking a dead node's groups over) before showing the cluster.", valueName: "seconds"))
        var wait: Double = 0

        func validate() throws {
            guard wait >= 0, wait.isFinite else { throw ValidationError("--wait must be 0 or more seconds, got \(wait)") }
        }

        func run() throws {
            let db = try Database(url: cluster)
            defer { db.close() }
            guard try db.query("SELECT to_regclass('recur_meta') IS NOT NULL")[0][0] == "t" else {
                throw CLIError("\(db.describe) holds no recur cluster (no recur_meta table); start a node with --cluster first")
            }
            let meta = Dictionary(try db.query("SELECT key, value FROM recur_meta").map { ($0[0], $0[1]) }, uniquingKeysWith: { $1 })
            let groups = Int(meta["groups"] ?? "0") ?? 0
            let deadline = Date().addingTimeInterval(wait)
            while Date() < deadline,
                  (Int(try db.query("SELECT count(*) FROM recur_lease WHERE node IS NULL OR expires <= now()")[0][0]) ?? 0) > 0 {
                Thread.sleep(forTimeInterval: 0.1)
            }
            let nodes = try db.query("""
                SELECT n.node, n.leaving, round(extract(epoch FROM now() - n.heartbeat)::numeric, 2), n.peer_address,
                       n.client_address, count(l.grp),
                       coalesce(round(min(extract(epoch FROM l.expires - now()))::numeric, 2), 0),
                       coalesce(round(max(extract(epoch FROM now() - l.acquired))::numeric, 1), 0)
                FROM recur_node n LEFT JOIN recur_lease l ON l.node = n.node AND l.expires > now()
                GROUP BY n.node, n.leaving, n.heartbeat, n.peer_address, n.client_address ORDER BY n.node
                """)
            let orphaned = Int(try db.query("SELECT count(*) FROM recur_lease WHERE node IS NULL OR expires <= now()")[0][0]) ?? 0
            let streams = Int(try db.query("SELECT count(*) FROM (SELECT stream FROM recur_checkpoint UNION SELECT stream FROM recur_log) s")[0][0]) ?? 0
            if json {
                let rows = nodes.map { n in
                    "{\"node\":\(Self.quote(n[0])),\"leaving\":\(n[1] == "t"),\"heartbeat_age\":\(n[2]),\"peer\":\(Self.quote(n[3])),\"clients\":\(Self.quote(n[4])),\"groups\":\(n[5]),\"lease_remaining\":\(n[6]),\"held_for\":\(n[7])}"
                }
                print("{\"groups\":\(groups),\"schema\":\(meta["schema"] ?? "0"),\"streams\":\(streams),\"unowned_groups\":\(orphaned),\"nodes\":[\(rows.joined(separator: ","))]}")
            } else {
                print("cluster \(db.describe): \(groups) key groups, \(streams) streams stored, schema \(meta["schema"] ?? "?")")
                let header = ["node", "state", "groups", "heartbeat", "lease left", "held for", "peer", "clients"]
                let table = nodes.map { n in
                    [n[0], n[1] == "t" ? "leaving" : "live", n[5], n[2] + " s ago", n[6] + " s", n[7] + " s", n[3].isEmpty ? "-" : n[3], n[4].isEmpty ? "-" : n[4]]
                }
                let widths = header.indices.map { i in ([header[i]] + table.map { $0[i] }).map(\.count).max()! }
                for row in [header] + table {
                    print(row.indices.map { i in row[i].padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                        .trimmingCharacters(in: .whitespaces))
                }
                print(orphaned == 0 ? "every group has a live lease" : "\(orphaned) groups have no live lease (a node is taking them over)")
            }
            if orphaned > 0 { throw ExitCode(3) }
        }

        static func quote(_ s: String) -> String { JSONString.literal(s) }
    }
}

/// A libpq connection, for a few reads.
private final class Database {
    private let connection: OpaquePointer
    let describe: String

    init(url: String) throws {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw CLIError("--cluster takes a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE), not '\(url)'")
        }
        connection = PQconnectdb(url)
        describe = url.replacingOccurrences(of: #":[^:@/]*@"#, with: "@", options: .regularExpression)
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(connection)
            throw CLIError("cannot connect to the cluster's PostgreSQL (\(describe)): \(message)")
        }
    }

    /// The rows of `sql`, every value as text ("" for NULL).
    func query(_ sql: String) throws -> [[String]] {
        guard let result = PQexec(connection, sql) else { throw CLIError("PostgreSQL: out of memory") }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_TUPLES_OK else {
            throw CLIError("reading the cluster's tables failed: \(String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return (0..<PQntuples(result)).map { r in
            (0..<PQnfields(result)).map { c in String(cString: PQgetvalue(result, r, c)) }
        }
    }

    func close() { PQfinish(connection) }
}
