import ArgumentParser
import RecurServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--socket PATH` of the commands that talk to a running recurd (`connect`, `view`).
struct DaemonSocketOption: ParsableArguments {
    @Option(help: ArgumentHelp("The daemon's socket (default: $RECURD_SOCKET, else \(RecurdConfiguration.defaultSocketPath)).", valueName: "path"))
    var socket: String?

    /// The socket path: the flag, else $RECURD_SOCKET, else the documented default.
    var path: String {
        if let socket { return socket }
        if let value = getenv("RECURD_SOCKET"), value.pointee != 0 { return String(cString: value) }
        return RecurdConfiguration.defaultSocketPath
    }

    func validate() throws {
        if let socket, socket.isEmpty { throw ValidationError("--socket must name a path") }
        if path.utf8.count > 103 {
            throw ValidationError("the socket path '\(path)' is \(path.utf8.count) bytes long; Unix socket paths are limited to 103")
        }
    }
}
