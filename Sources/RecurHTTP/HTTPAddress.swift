import RecurSocketPath

/// Where recurd's HTTP surface listens (`--http`): a TCP host and port, a Unix socket path, or
/// (under systemd) a listening socket passed in as a descriptor.
public enum HTTPAddress: Sendable, Equatable, CustomStringConvertible {
    /// `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`; port 0 takes a free port.
    case tcp(host: String, port: Int)
    /// `unix:PATH`.
    case unix(path: String)
    /// A bound, listening socket passed by systemd (`FileDescriptorName=recurd-http`).
    case descriptor(Int32)

    /// Parses `--http`'s value. - Throws: `HTTPAddressError` saying what is wrong.
    public init(parsing text: String) throws(HTTPAddressError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard !path.isEmpty else { throw HTTPAddressError("'\(text)' names no socket path after 'unix:'") }
            if let problem = DaemonSocketPath.lengthProblem(path) { throw HTTPAddressError(problem) }
            self = .unix(path: path)
            return
        }
        guard let colon = text.lastIndex(of: ":") else {
            throw HTTPAddressError("'\(text)' is not HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464) or unix:PATH")
        }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw HTTPAddressError("'\(text)': an IPv6 address goes in brackets, e.g. [::1]:9464")
        }
        guard !host.isEmpty else { throw HTTPAddressError("'\(text)' names no host before the port (e.g. 127.0.0.1:9464)") }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw HTTPAddressError("'\(text)' has no port from 0 to 65535 after the last ':'")
        }
        self = .tcp(host: host, port: port)
    }

    /// As `--http` would take it (a descriptor as `fd:N`).
    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        case .descriptor(let fd): "fd:\(fd)"
        }
    }
}

/// A `--http` value that names no address, as a sentence.
public struct HTTPAddressError: Error, CustomStringConvertible {
    /// What is wrong with the value.
    public var description: String

    init(_ description: String) { self.description = description }
}
