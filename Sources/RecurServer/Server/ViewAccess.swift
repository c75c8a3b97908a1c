import RecurEngine
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Who may look at streams through the live view of `recurd --http` (docs/OBSERVABILITY.md,
/// "Access"): each HTTP client shows a token, and each token stands for a `Caller`, as a Unix
/// socket connection's `SO_PEERCRED` uid does. The **admin token**, drawn when the daemon
/// starts and written to a file only the daemon's user (and the admin group) can read, stands
/// for the daemon's own user acting on all streams. A socket client's `view` request gets a
/// token for its own user, which shows only what that user may see.
///
/// Tokens are 256 random bits from `SystemRandomNumberGenerator`, written as 64 hex digits;
/// they live as long as the daemon process. Lookups compare in constant time.
public final class ViewAccess: Sendable {
    /// The token for the daemon's own user, acting on all streams.
    public let adminToken: String
    private struct State {
        var tokens: [(token: [UInt8], caller: Caller)] = []
        var address: String?
    }
    private let state = Mutex(State())

    /// A new registry with a fresh admin token.
    public init() {
        adminToken = Self.draw()
        let admin = Caller(uid: UInt32(geteuid()), actsOnAll: true, exemptFromLimits: true)
        state.withLock { $0.tokens.append((Array(adminToken.utf8), admin)) }
    }

    /// Where the HTTP surface listens (set once it has bound), for `view` replies.
    public var address: String? {
        get { state.withLock { $0.address } }
        set { state.withLock { $0.address = newValue } }
    }

    /// The token for `caller`: the same one each time for the same user and privileges.
    public func token(for caller: Caller) -> String {
        state.withLock { state in
            if let known = state.tokens.first(where: { $0.caller == caller }) { return String(decoding: known.token, as: UTF8.self) }
            let token = Self.draw()
            state.tokens.append((Array(token.utf8), caller))
            return token
        }
    }

    /// Who `token` stands for; nil for a token this daemon never issued. Every issued token is
    /// compared in full, so the time taken says nothing about how much of a guess was right.
    public func caller(forToken token: some StringProtocol) -> Caller? {
        let given = Array(token.utf8)
        return state.withLock { state in
            var found: Caller?
            for entry in state.tokens where Self.constantTimeEqual(entry.token, given) { found = entry.caller }
            return found
        }
    }

    /// Writes the admin token and a newline to `path`, replacing what was there (through a
    /// new file renamed over it, so a link there is replaced, never followed), mode 0640,
    /// group `group` when given (the admin group), else the daemon's.
    public func writeAdminToken(to path: String, group: UInt32?) throws(ConfigurationError) {
        let temporary = path + ".\(getpid()).tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure("cannot write the HTTP token file '\(path)'") }
        var ok = true
        let bytes = Array((adminToken + "\n").utf8)
        ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) == $0.count }
        if ok, let group { ok = fchown(fd, UInt32.max, group) == 0 }
        if ok { ok = fchmod(fd, 0o640) == 0 }
        if ok { ok = fsync(fd) == 0 }
        let error = errno
        close(fd)
        if !ok || rename(temporary, path) != 0 {
            let reason = String(cString: strerror(ok ? errno : error))
            unlink(temporary)
            throw ConfigurationError("cannot write the HTTP token file '\(path)': \(reason)")
        }
    }

    private static func failure(_ what: String) -> ConfigurationError {
        ConfigurationError("\(what): \(String(cString: strerror(errno)))")
    }

    /// 256 random bits as 64 lowercase hex digits.
    static func draw() -> String {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        for _ in 0..<4 {
            let word = String(generator.next() as UInt64, radix: 16)
            text += String(repeating: "0", count: 16 - word.count) + word
        }
        return text
    }

    /// Equal lengths and bytes, in time that depends on the lengths only.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
