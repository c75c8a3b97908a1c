import ArgumentParser
import RecurHTTP

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

    /// Where the HTTP surface listens: the socket systemd passed, else `--http`; nil: off.
    func httpAddress() throws -> HTTPAddress? {
        if let passed = Self.httpActivationSocket { return .descriptor(passed) }
        return try http.map { try HTTPAddress(parsing: $0) }
    }
}
