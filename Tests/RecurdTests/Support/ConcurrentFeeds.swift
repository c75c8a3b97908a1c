import Foundation
import RecurTestSupport

/// Feeds `text` to the streams `c0`, `c1`, ... from `clients` connections at once, each in
/// random chunks drawn from `seed` (at most `chunkLengths.even` bytes for even clients,
/// `chunkLengths.odd` for odd ones), so that the daemon's steps carry varying mixes of streams.
/// `fields` are added to every feed request. Returns each client's events, or why it failed.
func feedConcurrently(_ daemon: Daemon, text: String, clients: Int, seed: UInt64,
                      chunkLengths: (even: Int, odd: Int), fields: [String: Any] = [:]) -> [Result<[[String: Any]], Error>] {
    let results = LockedResults(count: clients)
    nonisolated(unsafe) let fields = fields
    DispatchQueue.concurrentPerform(iterations: clients) { index in
        do {
            var generator = SeededGenerator(seed: seed &+ UInt64(index))
            let client = try daemon.connect()
            var events: [[String: Any]] = []
            for chunk in randomChunks(text, maxLength: index % 2 == 0 ? chunkLengths.even : chunkLengths.odd, using: &generator) {
                let request = fields.merging(["op": "feed", "stream": "c\(index)", "text": chunk]) { _, new in new }
                let (chunkEvents, reply) = try client.request(request)
                guard reply["done"] as? Bool == true else { throw TestFailure("feed failed: \(reply)") }
                events += chunkEvents
            }
            results.set(index, .success(events))
        } catch {
            results.set(index, .failure(error))
        }
    }
    return (0..<clients).map { results.get($0) ?? .failure(TestFailure("client \($0) did not finish")) }
}

/// Per-client results filled in from concurrent threads.
final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<[[String: Any]], Error>?]
    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ result: Result<[[String: Any]], Error>) { lock.withLock { results[index] = result } }
    func get(_ index: Int) -> Result<[[String: Any]], Error>? { lock.withLock { results[index] } }
}
