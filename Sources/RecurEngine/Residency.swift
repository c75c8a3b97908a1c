/// Where a registered stream is, and so who counts it and who may reach it
/// (docs/ENGINE.md, "States"). Only `.resident` streams count against the resident bound and
/// their owner's quota, sit in the least-recently-active list, are listed and are checkpointed;
/// `StreamRegistry` makes every transition and keeps those counts.
enum Residency: Equatable, CustomStringConvertible {
    /// Being brought back from the store by the `restore` job at the head of its queue. Its
    /// owner is not known yet, so the requests queued behind the restore are neither checked,
    /// subscribed nor counted until it has loaded; if none of them may use the stream, the load
    /// is discarded and nothing changed.
    case loading
    /// In memory and usable.
    case resident
    /// Handed to the store (eviction or expiry; generation `n` of this record's moves) and kept
    /// in memory until the store says it is saved. A request meanwhile takes it back; a store
    /// that cannot save it makes it resident again, over the bound.
    case storing(generation: Int)
    /// Not a stream any more (ended, not found or not loadable by the store, or a fork target
    /// whose copy failed) while requests are still queued on the name: they see a missing
    /// stream (a feed re-creates it), or fail with `failure` when there is one.
    case gone(failure: EngineError?)

    var description: String {
        switch self {
        case .loading: "loading"
        case .resident: "resident"
        case .storing(let generation): "storing (move \(generation))"
        case .gone(let failure?): "gone (\(failure.kind))"
        case .gone(nil): "gone"
        }
    }
}
