import ArgumentParser
import RecurSocketPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--socket PATH` of the commands that talk to a running recurd (`connect`, `view`).
struct DaemonSocketOption: ParsableArguments {
    @Option(help: ArgumentHelp("The daemon's socket (default: $RECURD_SOCKET, else \(DaemonSocketPath.defaultPath)).", valueName: "path"))
    var socket: String?

    /// The socket path: the flag, else $RECURD_SOCKET, else the documented default.
    var path: String {
        if let socket { return socket }
        if let value = getenv("RECURD_SOCKET"), value.pointee != 0 { return String(cString: value) }
        return DaemonSocketPath.defaultPath
    }

    func validate() throws {
        if let socket, socket.isEmpty { throw ValidationError("--socket must name a path") }
        if let problem = DaemonSocketPath.lengthProblem(path) { throw ValidationError(problem) }
    }
}
