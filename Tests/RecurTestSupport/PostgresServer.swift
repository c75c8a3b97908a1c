import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL server for one test: `initdb` in a temporary directory, started on a
/// Unix socket in that directory (no TCP), as the unprivileged user 65534 when the tests run
/// as root (PostgreSQL refuses to run as root), stopped and deleted by `stop()` or when
/// released. Debian's `postgresql` package (scripts/ensure-deps --test installs it).
public final class PostgresServer: @unchecked Sendable {
    /// The directory holding the data, the socket and the log.
    public let directory: URL
    public let port: Int
    private let bin: URL
    private var running = false

    /// `postgres://recur@/DATABASE?host=DIR&port=PORT`: the database `recur`, user `recur`.
    public var url: String { "postgres://recur@/recur?host=\(directory.path)&port=\(port)" }

    /// The PostgreSQL programs, from Debian's layout (/usr/lib/postgresql/VERSION/bin).
    public static func binaries() throws -> URL {
        let root = URL(fileURLWithPath: "/usr/lib/postgresql")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        guard let newest = versions.compactMap(Int.init).max() else {
            throw PostgresServerError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin); run scripts/ensure-deps --test")
        }
        return root.appendingPathComponent("\(newest)/bin")
    }

    /// Creates and starts a server; `settings` are extra `-c name=value` options.
    public init(settings: [String] = []) throws {
        bin = try Self.binaries()
        // Short: the socket path (DIR/.s.PGSQL.PORT) must fit in 107 bytes.
        directory = URL(fileURLWithPath: try Self.makeTemporaryDirectory())
        port = 20_000 + Int(getpid() % 20_000)
        if getuid() == 0 { chown(directory.path, 65534, 65534) }
        try runAsOwner(bin.appendingPathComponent("initdb").path,
                       ["-D", directory.appendingPathComponent("data").path, "-U", "recur", "--auth=trust", "-E", "UTF8",
                        "--no-sync", "--no-instructions"])
        let options = (["-k", directory.path, "-c", "listen_addresses=", "-p", "\(port)", "-c", "fsync=on",
                        "-c", "max_connections=200"] + settings.flatMap { ["-c", $0] }).joined(separator: " ")
        try runAsOwner(bin.appendingPathComponent("pg_ctl").path,
                       ["-D", directory.appendingPathComponent("data").path, "-o", options,
                        "-l", directory.appendingPathComponent("log").path, "-w", "-t", "60", "start"])
        running = true
        try psql("CREATE DATABASE recur", database: "postgres")
    }

    deinit { stop() }

    /// Runs SQL through psql on the test's database; returns its output (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String, database: String = "recur") throws -> String {
        try run(bin.appendingPathComponent("psql").path,
                ["-h", directory.path, "-p", "\(port)", "-U", "recur", "-d", database, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
    }

    /// Stops the server (fast shutdown) and deletes its directory.
    public func stop() {
        guard running else { return }
        running = false
        _ = try? runAsOwner(bin.appendingPathComponent("pg_ctl").path,
                            ["-D", directory.appendingPathComponent("data").path, "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(at: directory)
    }

    private func runAsOwner(_ program: String, _ arguments: [String]) throws {
        if getuid() == 0 {
            _ = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", program] + arguments)
        } else {
            _ = try run(program, arguments)
        }
    }

    @discardableResult
    private func run(_ program: String, _ arguments: [String]) throws -> String {
        // posix_spawn and waitpid, not Process: pg_ctl's server outlives it and inherits what
        // Foundation watches for the child's exit, so Process would wait for the server too.
        let id = UUID().uuidString
        let outURL = FileManager.default.temporaryDirectory.appendingPathComponent("recur-pg-\(id).out")
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("recur-pg-\(id).err")
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, program, &actions, nil, argv, environ)
        guard spawned == 0 else { throw PostgresServerError("cannot start \(program): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let output = (try? Data(contentsOf: outURL)) ?? Data()
        let error = (try? Data(contentsOf: errURL)) ?? Data()
        guard exitStatus == 0 else {
            let log = (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? ""
            throw PostgresServerError("\(URL(fileURLWithPath: program).lastPathComponent) \(arguments.joined(separator: " ")) failed (\(exitStatus)): \(String(decoding: error, as: UTF8.self))\(log.isEmpty ? "" : "\nserver log:\n" + log.suffix(2000))")
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/recur-pg.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw PostgresServerError("mkdtemp failed: errno \(errno)") }
        return String(cString: made)
    }
}

public struct PostgresServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
