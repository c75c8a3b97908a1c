import Foundation
import Logging
import RecurCore
import RecurEngine
@testable import RecurServer
import ServiceLifecycle
import RecurTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A real socket server in this process: engine, notice router and `SocketServer` in a
/// `ServiceGroup`, listening on a socket in a fresh temporary directory.
final class ServerHarness {
    let directory: URL
    let socketPath: String
    let configuration: RecurdConfiguration
    let engine: StreamEngine
    let server: SocketServer
    private let group: ServiceGroup
    private let runTask: Task<Void, Error>
    private var stopped = false

    /// Silent, unless RECURD_TEST_LOG is set (then debug logs go to stderr).
    static let quietLogger: Logger = {
        guard ProcessInfo.processInfo.environment["RECURD_TEST_LOG"] != nil else {
            return Logger(label: "recurd.test") { _ in SwiftLogNoOpLogHandler() }
        }
        var logger = Logger(label: "recurd.test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .debug
        return logger
    }()

    /// - Parameter handOver: bind and listen on the socket here and give the server only the
    ///   descriptor, as socket activation would.
    init(model: Model = TestModels.charLSTM, handOver: Bool = false,
         configure: (inout RecurdConfiguration) -> Void = { _ in }) throws {
        directory = try makeShortTemporaryDirectory()
        socketPath = directory.appendingPathComponent("d.sock").path
        var configuration = RecurdConfiguration()
        if handOver {
            configuration.listeningDescriptor = try Self.listeningSocket(at: socketPath)
        } else {
            configuration.socketPath = socketPath
        }
        configuration.shutdownGracePeriod = .seconds(5)
        configure(&configuration)
        self.configuration = configuration
        engine = StreamEngine(model: model, options: configuration.engine)
        let notices = NoticeRouter()
        notices.install(on: engine)
        server = SocketServer(engine: engine, configuration: configuration, notices: notices, logger: Self.quietLogger)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: EngineService(engine: engine)), .init(service: server)], logger: Self.quietLogger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
        group = ServiceGroup(configuration: groupConfiguration)
        runTask = Task(executorPreference: harnessExecutor) { [group] in try await group.run() }
        // One probe connection: it proves the server is listening and serving, and once it
        // is closed (it got a reply, so it was admitted) the connection count stays at 0.
        let path = socketPath
        var probe = try eventually("the server listening on \(path)", timeout: .seconds(60), { try? SocketClient(path: path) }, until: { $0 != nil })
        _ = try probe!.request(#"{"op":"model"}"#)
        probe = nil
        let server = server
        try eventually("the readiness probe's connection closed (open connections)", timeout: .seconds(60), { server.openConnections }, until: { $0 == 0 })
    }

    deinit { stop() }

    /// A Unix stream socket bound to `path` and listening, as a service manager would pass it.
    static func listeningSocket(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 16) == 0 else {
            throw TestFailure("cannot make a listening socket at \(path): errno \(errno)")
        }
        return fd
    }

    func connect() throws -> SocketClient {
        try SocketClient(path: socketPath)
    }

    /// Shuts the server down gracefully and waits for it; returns the run's error, if any.
    @discardableResult
    func stop() -> Error? {
        guard !stopped else { return nil }
        stopped = true
        let group = group, runTask = runTask
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            return try blocking(timeout: 30) { () async -> Error? in
                await group.triggerGracefulShutdown()
                do { try await runTask.value; return nil } catch { return error }
            }
        } catch {
            return error
        }
    }
}
