import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Recurd {
    /// Descriptors the daemon needs besides its connections (the listening socket, the state
    /// store, the event loops, the journal).
    static let descriptorsBesidesConnections = 64

    /// Raises the soft limit on open descriptors to the hard one: the default soft limit (often
    /// 1024) is below what --max-connections needs, and a daemon out of descriptors cannot
    /// accept. Logs a warning when even the hard limit is too low.
    static func raiseDescriptorLimit(connections: Int, logger: Logger) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let needed = connections + descriptorsBesidesConnections
        if Int(clamping: limit.rlim_cur) < needed {
            logger.warning("the limit on open files is \(limit.rlim_cur), below the \(needed) that \(connections) connections need: connections beyond it wait to be accepted; raise it (LimitNOFILE= under systemd, ulimit -n)")
        }
    }
}
