/// How hard the store works to keep acknowledged tokens (`recurd --durability`).
public enum Durability: String, Sendable, CaseIterable {
    /// Every feed segment is in the log and fsynced before any event acknowledges one of its
    /// tokens: nothing acknowledged is lost, even on a power failure. Appends arriving
    /// together share one transaction and one fsync (group commit).
    case strict
    /// Every feed segment is written to the log (the operating system has it) before it is
    /// acknowledged, and fsynced at intervals: nothing acknowledged is lost when the process
    /// dies (crash, `kill -9`); a power failure or kernel crash may lose the last interval.
    case batched
    /// No token log: streams reach the store only as checkpoints (eviction, expiry, graceful
    /// stop). A crash loses what streams absorbed since their last checkpoint.
    case off
}
