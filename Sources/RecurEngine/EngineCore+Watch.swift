/// Watches (`StreamEngine.watch`): a stream's watchers live in its record, under the lock;
/// the engine thread copies them into each row it steps and hands events over without waiting.
extension EngineCore {
    /// Adds `watch` to its stream, which must be in memory and usable by `client`.
    func attach(_ watch: StreamWatch, client: ClientID?) throws(EngineError) {
        lock.lock()
        defer { lock.unlock() }
        guard phase == .idle || phase == .running else { throw .shuttingDown }
        try checkServed(watch.stream)
        guard let record = registry[watch.stream] else { throw .unknownStream(watch.stream) }
        switch record.residency {
        case .resident, .storing:
            try checkAccess(to: record, by: caller(of: client))
            guard record.watchers.count < StreamEngine.maxWatchersPerStream else {
                throw .busy("stream \(EngineError.quoted(watch.stream)) already has \(StreamEngine.maxWatchersPerStream) watchers, the most it may have")
            }
            record.watchers.append(watch)
        case .loading, .gone:
            // Left memory or is coming back between the check and now: the caller may retry.
            throw .unknownStream(watch.stream)
        }
    }

    /// Forgets `watch` (it was cancelled or cut off).
    func unwatch(_ watch: StreamWatch) {
        lock.lock()
        defer { lock.unlock() }
        guard let record = registry[watch.stream] else { return }
        record.watchers.removeAll { $0 === watch }
    }
}
