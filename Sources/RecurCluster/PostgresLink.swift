import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// Where the cluster's PostgreSQL is, from `recurd --cluster URL`: libpq's URL form,
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or a Unix socket directory as libpq
/// takes it, `postgres://USER@/DATABASE?host=/run/postgresql&port=5432`.
public struct ClusterDatabase: Sendable, CustomStringConvertible {
    /// The connection settings.
    let configuration: PostgresConnection.Configuration
    /// The URL without its password, for logs.
    public let description: String

    /// Parses `url`. - Throws: `ClusterError` naming what is wrong.
    public init(url: String) throws(ClusterError) {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw ClusterError("--cluster takes a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE or postgres://USER@/DATABASE?host=/socket/dir), not '\(url)'")
        }
        let query = Dictionary((parts.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let user = parts.user.flatMap { $0.removingPercentEncoding } ?? ProcessInfo.processInfo.environment["USER"] ?? "postgres"
        let password = parts.password.flatMap { $0.removingPercentEncoding }
        let database = String(parts.path.drop(while: { $0 == "/" }))
        let port = parts.port ?? query["port"].flatMap { Int($0) } ?? 5432
        let host = (query["host"] ?? parts.host ?? "").removingPercentEncoding ?? ""
        guard !database.isEmpty else { throw ClusterError("the cluster URL '\(url)' names no database (…/DATABASE)") }
        if host.hasPrefix("/") {
            configuration = .init(unixSocketPath: host + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
            description = "postgres://\(user)@/\(database)?host=\(host)&port=\(port)"
        } else {
            configuration = .init(host: host.isEmpty ? "localhost" : host, port: port, username: user, password: password,
                                  database: database, tls: .disable)
            description = "postgres://\(user)@\(host.isEmpty ? "localhost" : host):\(port)/\(database)"
        }
    }
}

/// What the cluster can fail with; `description` is a sentence for logs and clients.
public struct ClusterError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One connection to PostgreSQL, used from one thread at a time, re-established after it
/// breaks. Queries block the calling thread (never an event loop's): the store's writer and
/// the lease keeper are threads of their own.
final class PostgresLink: @unchecked Sendable {
    private let database: ClusterDatabase
    private let logger: Logger
    /// Statements run on every new connection (session settings).
    private let setup: [String]
    private let name: String
    private var connection: PostgresConnection?
    private static let ids = IDs()
    private final class IDs: @unchecked Sendable {
        private let lock = NSLock()
        private var last = 0
        func next() -> Int { lock.withLock { last += 1; return last } }
    }

    init(_ database: ClusterDatabase, name: String, setup: [String] = [], logger: Logger) {
        self.database = database
        self.name = name
        self.setup = setup
        self.logger = logger
    }

    /// Runs `query`, connecting first if needed. A failure closes the connection (the next
    /// query reconnects), so a broken link costs one failed query.
    @discardableResult
    func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        let connection = try connected()
        do {
            return try connection.query(query, logger: logger).wait()
        } catch {
            if connection.isClosed { self.connection = nil }
            throw error
        }
    }

    /// Runs several statements in one transaction.
    func transaction(_ body: () throws -> Void) throws {
        try run("BEGIN")
        do {
            try body()
            try run("COMMIT")
        } catch {
            _ = try? run("ROLLBACK")
            throw error
        }
    }

    private func connected() throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        let id = Self.ids.next()
        let made: PostgresConnection
        do {
            made = try PostgresConnection.connect(on: PostgresConnection.defaultEventLoopGroup.any(),
                                                  configuration: database.configuration, id: id, logger: logger).wait()
        } catch {
            throw ClusterError("cannot connect to the cluster's PostgreSQL (\(database)) for the \(name): \(Self.describe(error))")
        }
        for statement in setup { _ = try made.query(PostgresQuery(unsafeSQL: statement), logger: logger).wait() }
        connection = made
        return made
    }

    func close() {
        if let connection { try? connection.close().wait() }
        connection = nil
    }

    deinit {
        // Without waiting: a link dropped on a failed start still closes its connection.
        // The connection must live until it is closed (PostgresNIO checks).
        if let connection {
            let closing: EventLoopFuture<Void> = connection.close()
            closing.whenComplete { _ in withExtendedLifetime(connection) {} }
        }
    }

    /// A PostgreSQL error as a sentence: the server's message and SQLSTATE when there is one.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return message + (error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }

    /// The SQLSTATE of a server error, if `error` is one.
    static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }
}
