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

    /// The groups each of `nodes` (sorted by name) should hold for an even spread: group g goes
    /// to the node at g mod n, so every node holds ⌊G/n⌋ or ⌈G/n⌉ and adding a node moves
    /// about G/(n+1) groups. The same on every node, so nodes agree without talking.
    public static func share(of node: String, among nodes: [String], count: Int) -> Set<Int> {
        let sorted = nodes.sorted()
        guard let index = sorted.firstIndex(of: node) else { return [] }
        return Set(stride(from: index, to: count, by: sorted.count))
    }
}
