import Foundation
import GRDB
import RecurEngine

/// Bringing a stream back: the latest checkpoint plus the logged tail after it, or, when the
/// checkpoint was made under another model, the whole logged history replayed from the start.
extension StateStore {
    /// One row of the token log: tokens[i] became the stream's token `offset + i + 1`.
    package struct LogRow {
        package var vocabulary: UInt64
        package var owner: UInt32
        package var offset: Int
        package var tokens: [Int32]
        package var pending: [UInt8]
        /// When the stream was created (seconds since 1970); nil in rows of schema 1.
        package var created: Double? = nil
        var end: Int { offset + tokens.count }

        /// Memberwise.
        package init(vocabulary: UInt64, owner: UInt32, offset: Int, tokens: [Int32], pending: [UInt8], created: Double? = nil) {
            self.vocabulary = vocabulary
            self.owner = owner
            self.offset = offset
            self.tokens = tokens
            self.pending = pending
            self.created = created
        }
    }

    /// The stored stream, nil when there is none. Every value read is checked (`StoredValue`):
    /// a malformed record throws a `StoreError` that names the stream, the row and the column.
    func read(_ stream: String, _ db: Database) throws -> StoredStream? {
        let checkpointRows = try Row.fetchAll(db, sql: "SELECT record FROM checkpoint WHERE stream = ?", arguments: [stream])
        let rows = try Row.fetchAll(db, sql: """
            SELECT id, vocabulary, owner, "offset", tokens, pending, created FROM log WHERE stream = ? ORDER BY id
            """, arguments: [stream]).map { row throws(StoreError) in try Self.logRow(row, of: stream) }
        if checkpointRows.isEmpty && rows.isEmpty { return nil }
        let checkpoint = try checkpointRows.first.map { row throws(StoreError) in
            let place = "the checkpoint of stream \(Self.quoted(stream))"
            let record = try StoredValue(row, "record", in: place).blob()
            let snapshot: StreamSnapshot
            do {
                snapshot = try StreamSnapshot.decode([UInt8](record))
            } catch {
                throw StoreError("\(place) is unreadable: \(error)")
            }
            guard snapshot.stream == stream else {
                throw StoreError("the checkpoint of stream \(Self.quoted(stream)) holds the stream \(Self.quoted(snapshot.stream))")
            }
            return snapshot
        }
        return Self.resolve(stream, checkpoint: checkpoint, log: rows, fingerprint: fingerprintForLoads)
    }

    /// One log row, checked: a uid, an offset a stream can reach, whole tokens, blobs.
    private static func logRow(_ row: Row, of stream: String) throws(StoreError) -> LogRow {
        let id: Int64 = (try? StoredValue(row, "id", in: "a log row").integer(in: Int64.min...Int64.max)) ?? -1
        let place = "the log row \(id) of stream \(quoted(stream))"
        let value = { (column: String) in StoredValue(row, column, in: place) }
        let tokens = try value("tokens").blob()
        guard tokens.count % 4 == 0 else {
            throw StoreError("\(place) holds \(tokens.count) bytes of tokens, not a whole number of tokens")
        }
        return LogRow(vocabulary: try value("vocabulary").bits(),
                      owner: UInt32(try value("owner").integer(in: 0...Int64(UInt32.max))),
                      offset: Int(try value("offset").integer(in: 0...Int64(StreamSnapshot.maxOffset))),
                      tokens: try TokenBlob.decode(tokens), pending: [UInt8](try value("pending").blob()),
                      created: try value("created").optionalTime())
    }

    /// The decision, apart from SQLite so that it can be tested directly (and shared with the
    /// PostgreSQL store, which keeps the same log and checkpoints).
    package static func resolve(_ stream: String, checkpoint: StreamSnapshot?, log: [LogRow], fingerprint: ModelFingerprint) -> StoredStream {
        let foreignTokens = log.contains { $0.vocabulary != fingerprint.vocabulary }
        if let checkpoint, !foreignTokens, checkpoint.vocabularyHash == fingerprint.vocabulary,
           checkpoint.offset == 0 || checkpoint.modelHash == fingerprint.model,
           let (tail, pending) = tokens(after: checkpoint.offset, in: log) {
            return StoredStream(snapshot: checkpoint, replay: tail, pendingText: pending ?? checkpoint.pendingText)
        }
        // Rebuild from the log alone: it must start at the stream's start and reach at least
        // as far as the checkpoint.
        let start = empty(stream, like: checkpoint, owner: checkpoint?.owner ?? log.last?.owner,
                          created: log.last(where: { $0.created != nil })?.created, fingerprint: fingerprint)
        if !foreignTokens, log.first?.offset == 0, let (all, pending) = tokens(after: 0, in: log),
           all.count >= (checkpoint?.offset ?? 0) {
            // The log's held text is the newer one when it reaches past the checkpoint, or ends
            // in an empty row (which a checkpoint at its offset would have deleted).
            let endsEmpty = log.last.map { $0.tokens.isEmpty && $0.offset == all.count } ?? false
            let ownPending = all.count > (checkpoint?.offset ?? 0) || endsEmpty ? pending : checkpoint?.pendingText
            return StoredStream(snapshot: start, replay: all, pendingText: ownPending ?? [])
        }
        let why: String
        if let checkpoint, checkpoint.vocabularyHash != fingerprint.vocabulary || foreignTokens {
            why = "it was saved under a model with another vocabulary, so its tokens mean nothing to this one"
        } else if let checkpoint, checkpoint.modelHash != fingerprint.model {
            why = "it was saved under another model (\(ModelFingerprint.hex(checkpoint.modelHash)), now \(fingerprint.modelHex)) and its log no longer reaches back to its start, so it cannot be rebuilt by replay"
        } else {
            why = "its token log has a gap, so its state cannot be recomputed"
        }
        return StoredStream(snapshot: start, pendingText: [],
                            resetReason: "stream \(quoted(stream)) was reset: \(why)")
    }

    /// The logged tokens at positions after `offset`, and the pending text of the row that
    /// ends the log (nil when no row reaches past `offset` and no empty row sits at the end);
    /// nil when the rows leave a gap. An empty row (a feed that completed no token but left
    /// more text held back) at the end is newer than what it follows: a checkpoint at its
    /// offset deletes the empty rows written before it.
    private static func tokens(after offset: Int, in log: [LogRow]) -> ([Int32], [UInt8]?)? {
        var out: [Int32] = []
        var reached = offset
        var pending: [UInt8]?
        for row in log where row.end > reached || (row.offset == reached && row.end == reached) {
            guard row.offset <= reached else { return nil }
            out += row.tokens[(reached - row.offset)...]
            reached = row.end
            pending = row.pending
        }
        return (out, pending)
    }

    /// The starting point of a rebuild; its creation time is the checkpoint's, else the log's
    /// (both carry it since schema 2), else now.
    private static func empty(_ stream: String, like checkpoint: StreamSnapshot?, owner: UInt32?, created: Double?,
                              fingerprint: ModelFingerprint) -> StreamSnapshot {
        let now = Date().timeIntervalSince1970
        return StreamSnapshot(stream: stream, modelHash: fingerprint.model, vocabularyHash: fingerprint.vocabulary,
                              offset: 0, scoredTokens: 0, lossSum: 0, created: checkpoint?.created ?? created ?? now,
                              lastActivity: checkpoint?.lastActivity ?? now, owner: owner,
                              state: [], logProbs: [], pendingText: [])
    }

    package static func quoted(_ name: String) -> String {
        "'" + name.unicodeScalars.map { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined() + "'"
    }
}
