import Foundation
import RecurTestSupport
import XCTest

/// A real `recurd --socket` process on a temporary socket, ready when `start` returns.
final class Daemon: @unchecked Sendable {
    let child: ChildProcess
    let socketPath: String
    let directory: URL

    /// Starts `recurd --model MODEL --socket DIR/d.sock ARGS` and waits until the socket
    /// accepts a connection. The process is killed at the end of the test if still running.
    static func start(_ test: XCTestCase, model: URL = Repository.shakespeareModel, arguments: [String] = [],
                      in directory: URL? = nil, timeout: Double = 30) throws -> Daemon {
        let directory = try directory ?? makeWorkDirectory(test)
        let socketPath = directory.appendingPathComponent("d.sock").path
        let child = try ChildProcess(Executables.recurd, ["--model", model.path, "--socket", socketPath] + arguments,
                                     in: directory)
        test.addTeardownBlock { child.signal(SIGKILL) }
        let daemon = Daemon(child: child, socketPath: socketPath, directory: directory)
        try daemon.waitUntilReady(timeout: timeout)
        return daemon
    }

    private init(child: ChildProcess, socketPath: String, directory: URL) {
        self.child = child
        self.socketPath = socketPath
        self.directory = directory
    }

    /// Readiness is the socket accepting a connection (`ChildProcess.waitFor`: fails with
    /// recurd's stderr when it exits first or the deadline passes).
    func waitUntilReady(timeout: Double) throws {
        let socketPath = socketPath
        try child.waitFor("recurd to accept connections on \(socketPath)", timeout: timeout) {
            (try? SocketClient(path: socketPath)) != nil
        }
    }

    func connect() throws -> SocketClient { try SocketClient(path: socketPath) }

    /// Sends SIGTERM and waits for the exit.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeout: Double = 20) throws -> ProcessResult {
        child.signal(signal)
        return try child.wait(timeout: timeout)
    }
}
