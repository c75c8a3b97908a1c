import ArgumentParser
import Logging
import RecurHTTP
import RecurServer

#if canImport(Glibc)
import Glibc
#endif

extension Recurd {
    /// The HTTP socket systemd passed (recurd-http.socket, FileDescriptorName=recurd-http).
    static var httpActivationSocket: Int32? {
        passedDescriptors.first(where: { $0.name == "recurd-http" })?.descriptor
    }

    /// Checks `--http`: an address it cannot parse is a flag error.
    func validateHTTP() throws {
        guard let http else { return }
        do {
            _ = try HTTPAddress(parsing: http)
        } catch {
            throw ValidationError("--http: \(error.description)")
        }
    }

    /// Where the live view's admin token goes: `--http-token-file`, else `http-token` in
    /// systemd's runtime directory, else beside the socket, else in the state directory
    /// (made, mode 0700, if it does not exist yet).
    func httpTokenPath() -> String? {
        if let httpTokenFile { return httpTokenFile }
        if let runtime = getenv("RUNTIME_DIRECTORY").map({ String(cString: $0) }), !runtime.isEmpty,
           let first = runtime.split(separator: ":").first {
            return "\(first)/http-token"
        }
        if let socket { return "\(socket).http-token" }
        if let stateDir {
            mkdir(stateDir, 0o700)  // as the state store makes it; an existing one is checked there
            return "\(stateDir)/http-token"
        }
        return nil
    }

    /// The live view's tokens, with the admin token written where `httpTokenPath()` says
    /// (readable by the admin group); nil, and only /metrics is served, when there is no
    /// place for it.
    func liveView(logger: Logger) throws -> ViewAccess? {
        guard let path = httpTokenPath() else {
            logger.notice("the live view is off: there is no place for its token (give --http-token-file PATH, or --socket or --state-dir); /metrics is served")
            return nil
        }
        let view = ViewAccess()
        let group = adminGroup.flatMap { name in getgrnam(name).map { $0.pointee.gr_gid } }
        do {
            try view.writeAdminToken(to: path, group: group)
        } catch {
            throw RecurdError(error.message)
        }
        logger.info("live view token written to \(path)", metadata: ["recurd.http.token_file": "\(path)"])
        return view
    }

    /// Where the HTTP surface listens: the socket systemd passed, else `--http`; nil: off.
    func httpAddress() throws -> HTTPAddress? {
        if let passed = Self.httpActivationSocket { return .descriptor(passed) }
        return try http.map { try HTTPAddress(parsing: $0) }
    }
}
