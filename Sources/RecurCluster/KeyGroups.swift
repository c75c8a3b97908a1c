/// Streams hashed to key groups: a cluster's unit of ownership (Flink's key groups). The
/// number of groups is fixed when the cluster is created (`recur_meta.groups`): a stream's
/// group must not change while the cluster lives, whatever the nodes.
public enum KeyGroups {
    /// The default number of groups of a new cluster, as Flink's default maximum parallelism
    /// is 128 and its upper bound 32768: enough to spread over some hundreds of nodes.
    public static let defaultCount = 1024

    /// The group of `stream`: 64-bit FNV-1a of its UTF-8 bytes, modulo `count`. Stable across
    /// processes, platforms and versions (docs/CLUSTER.md gives it for other languages).
    public static func group(of stream: String, count: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in stream.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return Int(hash % UInt64(count))
    }

    /// How many groups `node` should hold for an even spread over `nodes`: ⌊G/n⌋, one more for
    /// the first G mod n of them in name order. The same on every node, so nodes agree on
    /// the quotas without talking; which groups each holds is decided by who holds what now
    /// (a node keeps its groups up to its quota), so a join or a departure moves only about
    /// G/n groups instead of reshuffling them all.
    public static func quota(of node: String, among nodes: [String], count: Int) -> Int {
        let sorted = Set(nodes).sorted()
        guard let index = sorted.firstIndex(of: node) else { return 0 }
        return count / sorted.count + (index < count % sorted.count ? 1 : 0)
    }
}
