import Logging
import RecurEngine

/// Carries the engine's stream notices (expired, evicted, ended, reset) to the clients they
/// concern: every connection, and the stdin pipeline, registers a mailbox under its
/// `ClientID`. Delivery never blocks the engine thread; a client that does not read its
/// notices keeps only the newest `mailboxLimit` of them.
public final class NoticeRouter: Sendable {
    /// Notices kept per client that has not taken them yet.
    public static let mailboxLimit = 256

    private let mailboxes = Locked<[ClientID: AsyncStream<StreamNotice>.Continuation]>([:])
    private let logger: Logger?

    /// - Parameter logger: where every notice is also logged, so expiries and evictions are
    ///   never silent even when no client is left to tell.
    public init(logger: Logger? = nil) {
        self.logger = logger
    }

    /// Makes this router the engine's notice handler. Call once, before `engine.start()`.
    public func install(on engine: StreamEngine) {
        engine.setNoticeHandler { [self] notice, clients in
            deliver(notice, to: clients)
        }
    }

    /// Hands `notice` to each listed client that has a mailbox; others are gone already.
    public func deliver(_ notice: StreamNotice, to clients: [ClientID]) {
        // Expiry and eviction are the daemon's own doing, worth an info line; a stream the
        // store could not take is a warning; resets and ends were asked for by a client.
        let level: Logger.Level = switch notice.kind {
        case .expired, .evicted: .info
        case .notStored: .warning
        case .ended, .reset: .debug
        }
        logger?.log(level: level, "\(notice.message)", metadata: [
            "recurd.notice": "\(notice.kind.rawValue)", "recurd.stream": "\(notice.stream)",
            "recurd.notified": "\(clients.count)",
        ])
        let targets = mailboxes.withLock { boxes in clients.compactMap { boxes[$0] } }
        for target in targets { target.yield(notice) }
    }

    /// Opens the mailbox of `client`; its notices arrive on the returned stream until
    /// `close(_:)`.
    func open(_ client: ClientID) -> AsyncStream<StreamNotice> {
        let (stream, continuation) = AsyncStream.makeStream(of: StreamNotice.self,
                                                             bufferingPolicy: .bufferingNewest(Self.mailboxLimit))
        let previous = mailboxes.withLock { boxes in
            defer { boxes[client] = continuation }
            return boxes[client]
        }
        precondition(previous == nil, "client \(client) opened a notice mailbox twice")
        return stream
    }

    /// Closes the mailbox of `client`, ending its stream.
    func close(_ client: ClientID) {
        let continuation = mailboxes.withLock { $0.removeValue(forKey: client) }
        continuation?.finish()
    }
}
