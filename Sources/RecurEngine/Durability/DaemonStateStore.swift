/// A state store as a daemon runs it: the engine's `StreamStore`, and what the daemon does
/// with the store around the engine's lifetime. The daemon (RecurServer's `runDaemon`) knows a
/// store only through this protocol; the executable chooses and builds it (recurd:
/// RecurStore's SQLite `StateStore` with `--state-dir`).
public protocol DaemonStateStore: StreamStore {
    /// Deletes the stored streams whose names `matches`, except those in `keeping` (private
    /// streams of connections that are gone), and returns their names.
    func discardStreams(where matches: (String) -> Bool, keeping: Set<String>) -> [String]

    /// Finishes the writes queued and closes the store; called once, after the engine stopped
    /// (its graceful stop has handed the store a checkpoint of every stream).
    func close()
}
