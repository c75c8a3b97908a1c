import Foundation
import GRDB
import RecurEngine

/// The writer thread: group commit of the queued operations, and what each one does to the
/// tables (docs/ENGINE.md, "The SQLite store").
extension StateStore {
    func writerLoop() {
        var lastSync = ProcessInfo.processInfo.systemUptime
        var unsynced = false
        lock.lock()
        while true {
            while queue.isEmpty && phase == .running {
                if options.durability != .strict && unsynced {
                    let wait = lastSync + options.syncInterval - ProcessInfo.processInfo.systemUptime
                    if wait <= 0 { break }
                    _ = lock.wait(until: Date(timeIntervalSinceNow: wait))
                } else {
                    lock.wait()
                }
            }
            let batch = queue
            queue = []
            let stopping = phase != .running
            lock.unlock()

            var failure: (any Error)?
            if !batch.isEmpty {
                do {
                    let start = ContinuousClock.now
                    let bytes = try pool.write { db in
                        var bytes = 0
                        for operation in batch { bytes += try apply(operation, db) }
                        return bytes
                    }
                    metrics.committed(bytes: bytes, since: start)
                    unsynced = true
                } catch {
                    failure = StoreError("writing \(batch.count) operations failed: \(error)")
                }
            }
            let now = ProcessInfo.processInfo.systemUptime
            if options.durability != .strict, unsynced, stopping || now >= lastSync + options.syncInterval {
                // synchronous=NORMAL: a checkpoint fsyncs the WAL (then the database file).
                try? pool.writeWithoutTransaction { db in _ = try db.checkpoint(.passive) }
                lastSync = now
                unsynced = false
            }

            lock.lock()
            // A failed write: periodic checkpoints are retried (they stay loadable from
            // `pending` meanwhile); everything else fails back to the engine, which fails the
            // request with `internal`, or keeps in memory a stream it could not store.
            var retry: [Operation] = []
            if let failure {
                consecutiveFailures += 1
                statistics.failures += 1
                statistics.lastError = "\(failure)"
                if consecutiveFailures <= Self.checkpointRetries {
                    retry = batch.filter { if case .checkpoint(_, _, nil) = $0 { true } else { false } }
                }
                for case .end(let stream, true, _) in batch { names.insert(stream) }  // the end changed nothing
            } else {
                consecutiveFailures = 0
                statistics.operations += batch.count
                if !batch.isEmpty { statistics.commits += 1 }
            }
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
            if !retry.isEmpty { usleep(200_000) }
            for operation in batch {
                switch operation {
                case .append(_, _, _, _, _, _, _, let done), .rebase(_, _, _, let done), .end(_, _, let done),
                     .checkpoint(_, _, let done?):
                    done(failure)
                case .checkpoint(_, _, nil):
                    break
                }
            }
            lock.lock()
            if stopping && queue.isEmpty { break }
        }
        phase = .closed
        lock.broadcast()
        lock.unlock()
    }

    /// Applies one operation; returns the bytes of the records it wrote (token blobs, held
    /// text, checkpoint records), for `recurd_store_written_bytes_total`.
    private func apply(_ operation: Operation, _ db: Database) throws -> Int {
        switch operation {
        case .append(let stream, let offset, let tokens, let pendingText, let owner, let created, let vocabulary, _):
            if offset == 0 {
                // A creation or reset: the stream starts over, nothing before counts.
                try db.execute(sql: "DELETE FROM log WHERE stream = ?", arguments: [stream])
                try db.execute(sql: "DELETE FROM checkpoint WHERE stream = ?", arguments: [stream])
            }
            let blob = TokenBlob.encode(tokens)
            try db.execute(sql: """
                INSERT INTO log(stream, vocabulary, owner, "offset", end_offset, tokens, pending, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [stream, Int64(bitPattern: vocabulary), Int64(owner), offset, offset + tokens.count,
                                 blob, Data(pendingText), created])
            return blob.count + pendingText.count
        case .checkpoint(let snapshot, _, _):
            let bytes = try writeCheckpoint(snapshot, db)
            // Empty rows (held text only) up to here are older than the checkpoint's held text.
            try db.execute(sql: """
                DELETE FROM log WHERE stream = ? AND "offset" = end_offset AND end_offset <= ?
                """, arguments: [snapshot.stream, snapshot.offset])
            if snapshot.offset > options.replayHistory {
                try db.execute(sql: "DELETE FROM log WHERE stream = ? AND end_offset <= ?",
                               arguments: [snapshot.stream, snapshot.offset])
            }
            return bytes
        case .rebase(let snapshot, let source, _, _):
            try db.execute(sql: "DELETE FROM log WHERE stream = ?", arguments: [snapshot.stream])
            let bytes = try writeCheckpoint(snapshot, db)
            if let source, snapshot.offset <= options.replayHistory {
                try db.execute(sql: """
                    INSERT INTO log(stream, vocabulary, owner, "offset", end_offset, tokens, pending, created)
                    SELECT ?, vocabulary, ?, "offset", end_offset, tokens, pending, ? FROM log
                    WHERE stream = ? AND end_offset <= ? ORDER BY id
                    """, arguments: [snapshot.stream, Int64(snapshot.owner ?? 0), snapshot.created, source, snapshot.offset])
            }
            return bytes
        case .end(let stream, _, _):
            try db.execute(sql: "DELETE FROM log WHERE stream = ?", arguments: [stream])
            try db.execute(sql: "DELETE FROM checkpoint WHERE stream = ?", arguments: [stream])
            return 0
        }
    }

    /// Writes the snapshot's checkpoint record; returns its size in bytes.
    private func writeCheckpoint(_ snapshot: StreamSnapshot, _ db: Database) throws -> Int {
        let record = Data(snapshot.encoded())
        try db.execute(sql: """
            INSERT OR REPLACE INTO checkpoint(stream, model, vocabulary, "offset", record) VALUES (?, ?, ?, ?, ?)
            """, arguments: [snapshot.stream, Int64(bitPattern: snapshot.modelHash), Int64(bitPattern: snapshot.vocabularyHash),
                             snapshot.offset, record])
        return record.count
    }
}
