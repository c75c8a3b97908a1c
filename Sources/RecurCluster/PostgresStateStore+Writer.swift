import Foundation
import NIOCore
import PostgresNIO
import RecurEngine
import RecurStore

/// The writer thread: group commit through `recur_commit`, fenced by the leases' epochs.
extension PostgresStateStore {
    func writerLoop() {
        lock.lock()
        while true {
            while queue.isEmpty && phase == .running { lock.wait() }
            let batch = queue
            queue = []
            let stopping = phase != .running
            // Operations on groups this node does not hold fail here; the rest carry the
            // epochs this node believes it holds, which PostgreSQL checks.
            var fencedHere: [Int] = []
            var epochs: [Int: Int64] = [:]
            for (i, operation) in batch.enumerated() {
                guard let stream = operation.stream else { continue }
                let g = group(of: stream)
                if g < 0 { continue }  // private: this node's alone
                if let epoch = held[g] { epochs[g] = epoch } else { fencedHere.append(i) }
            }
            lock.unlock()

            let refusedHere = Set(fencedHere)
            let writes = batch.enumerated().filter { !refusedHere.contains($0.offset) && $0.element.stream != nil }.map(\.element)
            var failure: (any Error)?
            var fenced = false
            if !writes.isEmpty {
                do {
                    let start = ContinuousClock.now
                    let bytes = try commit(writes, epochs: epochs)
                    commitLatency.recordNanoseconds(Self.nanoseconds(since: start))
                    writtenBytes.increment(by: bytes)
                } catch {
                    fenced = PostgresLink.sqlState(error) == "RC001"
                    failure = fenced
                        ? ClusterError("this node (\(node)) no longer holds the lease of a key group it wrote to; the write was refused")
                        : ClusterError("writing \(writes.count) operations to the cluster's PostgreSQL failed: \(PostgresLink.describe(error))")
                }
            }
            let notHeld = ClusterError("this node (\(node)) does not hold the key group of the stream; the write was refused")

            lock.lock()
            var retry: [Operation] = []
            if let failure {
                consecutiveFailures += 1
                statistics.failures += 1
                statistics.lastError = "\(failure)"
                if fenced { statistics.fenced += writes.count }
                if !fenced && consecutiveFailures <= Self.checkpointRetries {
                    retry = writes.filter { if case .checkpoint(_, _, nil) = $0 { true } else { false } }
                }
                for case .end(let stream, true, _) in writes where group(of: stream) < 0 || held[group(of: stream)] != nil {
                    names.insert(stream)
                }
            } else {
                consecutiveFailures = 0
                statistics.operations += writes.count
                if !writes.isEmpty { statistics.commits += 1 }
            }
            statistics.fenced += fencedHere.count
            for operation in batch {
                switch operation {
                case .checkpoint(let s, let g, nil) where retry.isEmpty, .checkpoint(let s, let g, _?), .rebase(let s, _, let g, _):
                    if pending[s.stream]?.generation == g { pending[s.stream] = nil }
                default:
                    break
                }
            }
            queue.insert(contentsOf: retry, at: 0)
            lock.unlock()
            if fenced { onFenced() }
            if !retry.isEmpty { usleep(200_000) }
            for (i, operation) in batch.enumerated() {
                if case .checkpoint(_, _, nil) = operation { continue }
                if case .barrier = operation {
                    operation.done?(nil)
                    continue
                }
                operation.done?(refusedHere.contains(i) ? notHeld : failure)
            }
            lock.lock()
            if stopping && queue.isEmpty { break }
        }
        phase = .closed
        lock.broadcast()
        lock.unlock()
    }

    /// One call of `recur_commit` for `writes`, in order; returns the bytes of the records written.
    private func commit(_ writes: [Operation], epochs: [Int: Int64]) throws -> Int {
        var kind: [String] = [], stream: [String] = [], grp: [Int32] = [], offset: [Int64] = [], end: [Int64] = []
        var tokens: [ByteBuffer] = [], pendingText: [ByteBuffer] = [], owner: [Int64] = [], created: [Double] = []
        var vocabulary: [Int64] = [], model: [Int64] = [], record: [ByteBuffer] = [], source: [String] = []
        var bytes = 0
        let empty = ByteBuffer()
        for operation in writes {
            var k = "", s = "", o: Int64 = 0, e: Int64 = 0, t = empty, p = empty, u: Int64 = 0, c = 0.0
            var v: Int64 = 0, m: Int64 = 0, r = empty, src = ""
            switch operation {
            case .append(let name, let at, let ids, let held, let uid, let creation, let vocab, _):
                k = "append"; s = name; o = Int64(at); e = Int64(at + ids.count)
                t = ByteBuffer(data: TokenBlob.encode(ids)); p = ByteBuffer(bytes: held); u = Int64(uid); c = creation
                v = Int64(bitPattern: vocab)
                bytes += t.readableBytes + p.readableBytes
            case .checkpoint(let snapshot, _, _), .rebase(let snapshot, _, _, _):
                k = if case .rebase = operation { "rebase" } else { "checkpoint" }
                if case .rebase(_, let from?, _, _) = operation { src = from }
                s = snapshot.stream; o = Int64(snapshot.offset); u = Int64(snapshot.owner ?? 0); c = snapshot.created
                v = Int64(bitPattern: snapshot.vocabularyHash); m = Int64(bitPattern: snapshot.modelHash)
                r = ByteBuffer(bytes: snapshot.encoded())
                bytes += r.readableBytes
            case .end(let name, _, _):
                k = "end"; s = name
            case .barrier:
                continue
            }
            kind.append(k); stream.append(s); grp.append(Int32(group(of: s))); offset.append(o); end.append(e)
            tokens.append(t); pendingText.append(p); owner.append(u); created.append(c); vocabulary.append(v)
            model.append(m); record.append(r); source.append(src)
        }
        let groups = epochs.keys.sorted()
        let groupList = groups.map(Int32.init), epochList = groups.map { epochs[$0]! }
        try writer.run("""
            SELECT recur_commit(\(node), \(groupList), \(epochList), \(kind), \(stream), \(grp), \(offset), \(end), \(tokens),
                                \(pendingText), \(owner), \(created), \(vocabulary), \(model), \(record), \(source),
                                \(Int64(options.replayHistory)))
            """)
        return bytes
    }

    static func nanoseconds(since start: ContinuousClock.Instant) -> Int64 {
        let d = ContinuousClock.now - start
        return d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }

    // MARK: Reads

    /// The stored stream, nil when there is none (on the reader connection, `readers` queue).
    func read(_ stream: String, fingerprint: ModelFingerprint) throws -> StoredStream? {
        let checkpoints = try reader.run("SELECT record FROM recur_checkpoint WHERE stream = \(stream)")
        var checkpoint: StreamSnapshot?
        for row in checkpoints {
            let record = try row.decode(ByteBuffer.self)
            do {
                checkpoint = try StreamSnapshot.decode(Array(record.readableBytesView))
            } catch {
                throw ClusterError("the checkpoint of stream \(StateStore.quoted(stream)) is unreadable: \(error)")
            }
            guard checkpoint?.stream == stream else {
                throw ClusterError("the checkpoint of stream \(StateStore.quoted(stream)) holds another stream")
            }
        }
        var log: [StateStore.LogRow] = []
        let rows = try reader.run("""
            SELECT vocabulary, owner, "offset", tokens, pending, created FROM recur_log WHERE stream = \(stream) ORDER BY id
            """)
        for row in rows {
            let (vocabulary, owner, offset, tokens, pendingText, created) = try row.decode((Int64, Int64, Int64, ByteBuffer, ByteBuffer, Double?).self)
            guard (0...Int64(UInt32.max)).contains(owner), offset >= 0, offset <= Int64(StreamSnapshot.maxOffset) else {
                throw ClusterError("a log row of stream \(StateStore.quoted(stream)) holds an owner or offset out of range")
            }
            log.append(StateStore.LogRow(vocabulary: UInt64(bitPattern: vocabulary), owner: UInt32(owner), offset: Int(offset),
                                         tokens: try TokenBlob.decode(Data(tokens.readableBytesView)),
                                         pending: Array(pendingText.readableBytesView), created: created))
        }
        if checkpoint == nil && log.isEmpty { return nil }
        return StateStore.resolve(stream, checkpoint: checkpoint, log: log, fingerprint: fingerprint)
    }
}
