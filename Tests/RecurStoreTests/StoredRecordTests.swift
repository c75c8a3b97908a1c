import Foundation
import GRDB
import RecurCore
import RecurEngine
@testable import RecurStore
import RecurStoreTestSupport
import XCTest

/// The store reads its database as untrusted input: malformed values fail their stream with a
/// sentence (reported once), never trap; an older schema is migrated; a stream keeps its
/// creation time in its log; streams can be discarded by name at start.
final class StoredRecordTests: XCTestCase {
    private let model = StoreFixtures.model()

    /// Appends one log row of `stream` and waits until it is written.
    private func append(_ store: StateStore, _ stream: String, offset: Int = 0, tokens: [Int32] = [1, 2, 3],
                        pending: [UInt8] = [], created: Double = 1_700_000_000.25) throws {
        let written = expectation(description: "append of \(stream)")
        let failure = Locked<(any Error)?>(nil)
        store.append(stream: stream, offset: offset, tokens: tokens, pendingText: pending, owner: 1000, created: created) { error in
            failure.withLock { $0 = error }
            written.fulfill()
        }
        wait(for: [written], timeout: 20)
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// What `load` gives for `stream`.
    private func load(_ store: StateStore, _ stream: String) -> Result<StoredStream?, any Error> {
        let loaded = expectation(description: "load of \(stream)")
        let result = Locked<Result<StoredStream?, any Error>?>(nil)
        store.load(stream: stream) { outcome in
            result.withLock { $0 = outcome }
            loaded.fulfill()
        }
        wait(for: [loaded], timeout: 20)
        return result.withLock { $0 }!
    }

    private func database(_ directory: String) throws -> DatabaseQueue {
        try DatabaseQueue(path: directory + "/streams.sqlite")
    }

    func test_load_malformedValueInAnyColumn_failsThatStreamWithASentence_andReportsItOnce() throws {
        let directory = try StoreFixtures.stateDirectory(self)
        let spoilers: [(String, String, String)] = [
            ("owner-text", "UPDATE log SET owner = 'abc'", "the text 'abc' in its owner column"),
            ("owner-negative", "UPDATE log SET owner = -1", "owner -1, outside 0...4294967295"),
            ("owner-real", "UPDATE log SET owner = 2.5", "the real number 2.5 in its owner column"),
            ("offset-huge", "UPDATE log SET \"offset\" = 9223372036854775807", "offset 9223372036854775807, outside"),
            ("offset-null", "UPDATE log SET \"offset\" = NULL", "NULL in its offset column"),
            ("vocabulary-blob", "UPDATE log SET vocabulary = X'00'", "a blob of 1 bytes in its vocabulary column"),
            ("tokens-text", "UPDATE log SET tokens = 'abcd'", "the text 'abcd' in its tokens column"),
            ("tokens-cut", "UPDATE log SET tokens = X'010000'", "3 bytes of tokens"),
            ("pending-real", "UPDATE log SET pending = 0.5", "in its pending column"),
            ("created-text", "UPDATE log SET created = 'noon'", "in its created column"),
        ]
        var store = try StoreFixtures.store(directory, model)
        for (stream, _, _) in spoilers { try append(store, stream) }
        try append(store, "good")
        store.close()
        // The NOT NULL columns are dropped, as any edit of the file could.
        try database(directory).write { db in
            try db.execute(sql: """
                CREATE TABLE log2(id INTEGER PRIMARY KEY, stream, vocabulary, owner, "offset", end_offset, tokens, pending, created);
                INSERT INTO log2 SELECT * FROM log; DROP TABLE log; ALTER TABLE log2 RENAME TO log;
                """)
            for (stream, update, _) in spoilers { try db.execute(sql: update + " WHERE stream = ?", arguments: [stream]) }
        }
        let reports = Locked<[String]>([])
        var options = StateStore.Options()
        options.lockWait = 0
        store = try StateStore(directory: directory, fingerprint: ModelFingerprint(of: model), options: options) { problem in
            reports.withLock { $0.append(problem) }
        }
        for (stream, _, expected) in spoilers {
            for _ in 0..<2 {
                guard case .failure(let error) = load(store, stream) else { return XCTFail("\(stream) loaded") }
                XCTAssertTrue("\(error)".contains("of stream '\(stream)'"), "\(error)")
                XCTAssertTrue("\(error)".contains(expected), "\(stream): \(error)")
            }
        }
        guard case .success(let good?) = load(store, "good") else { return XCTFail("the good stream did not load") }
        XCTAssertEqual(good.replay, [1, 2, 3])
        let reported = reports.withLock { $0 }
        XCTAssertEqual(reported.count, spoilers.count, "\(reported)")
        for (stream, _, _) in spoilers {
            XCTAssertEqual(reported.filter { $0.contains("stream '\(stream)' in the state store cannot be loaded") }.count, 1, stream)
        }
        store.close()
    }

    func test_open_streamNamesThatAreNotText_areIgnoredAndReported() throws {
        let directory = try StoreFixtures.stateDirectory(self)
        var store = try StoreFixtures.store(directory, model)
        try append(store, "a")
        try append(store, "b")
        store.close()
        try database(directory).write { db in
            try db.execute(sql: "UPDATE log SET stream = CAST('a' AS BLOB) WHERE stream = 'a'")
        }
        let reports = Locked<[String]>([])
        store = try StateStore(directory: directory, fingerprint: ModelFingerprint(of: model)) { problem in
            reports.withLock { $0.append(problem) }
        }
        XCTAssertEqual(store.storedStreamCount, 1)
        XCTAssertTrue(reports.withLock { $0 }.contains { $0.contains("1 streams whose name is not text (a blob of 1 bytes)") })
        store.close()
    }

    func test_load_checkpointWithAnOversizedPendingRunOfTheOldCode_decodes() throws {
        let snapshot = StreamSnapshot(stream: "w", modelHash: 1, vocabularyHash: 2, offset: 0, scoredTokens: 0, lossSum: 0,
                                      created: 10, lastActivity: 11, owner: 0, state: [], logProbs: [],
                                      pendingText: Array(repeating: UInt8(ascii: "a"), count: 70_000))
        XCTAssertEqual(try StreamSnapshot.decode(snapshot.encoded()), snapshot)
    }

    /// Issue 14, item 5: a stream rebuilt from its log alone keeps its creation time.
    func test_load_fromTheLogAlone_keepsTheCreationTime() throws {
        let directory = try StoreFixtures.stateDirectory(self)
        var store = try StoreFixtures.store(directory, model)
        try append(store, "s", created: 1_700_000_123.5)
        try append(store, "s", offset: 3, tokens: [4], created: 1_700_000_123.5)
        store.close()
        store = try StoreFixtures.store(directory, model)
        guard case .success(let found?) = load(store, "s") else { return XCTFail("the stream did not load") }
        XCTAssertEqual(found.snapshot.created, 1_700_000_123.5)
        XCTAssertEqual(found.replay, [1, 2, 3, 4])
        store.close()
    }

    /// A store of schema 1 (no `created` in the log) opens as schema 2 and its streams load.
    func test_open_schemaOneStore_migratesAndKeepsItsStreams() throws {
        let directory = try StoreFixtures.stateDirectory(self)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try database(directory).write { db in
            try db.execute(sql: """
                CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                CREATE TABLE checkpoint(stream TEXT PRIMARY KEY, model INTEGER NOT NULL, vocabulary INTEGER NOT NULL,
                    "offset" INTEGER NOT NULL, record BLOB NOT NULL);
                CREATE TABLE log(id INTEGER PRIMARY KEY, stream TEXT NOT NULL, vocabulary INTEGER NOT NULL, owner INTEGER NOT NULL,
                    "offset" INTEGER NOT NULL, end_offset INTEGER NOT NULL, tokens BLOB NOT NULL, pending BLOB NOT NULL);
                CREATE INDEX log_by_stream ON log(stream, id);
                INSERT INTO meta VALUES ('schema', 1);
                """)
            try db.execute(sql: """
                INSERT INTO log(stream, vocabulary, owner, "offset", end_offset, tokens, pending) VALUES ('old', ?, 1000, 0, 2, ?, X'')
                """, arguments: [Int64(bitPattern: ModelFingerprint(of: model).vocabulary), Data([5, 0, 0, 0, 6, 0, 0, 0])])
        }
        let store = try StoreFixtures.store(directory, model)
        guard case .success(let found?) = load(store, "old") else { return XCTFail("the schema 1 stream did not load") }
        XCTAssertEqual(found.replay, [5, 6])
        XCTAssertEqual(found.snapshot.owner, 1000)
        try append(store, "new", created: 42)
        store.close()
        let (version, columns) = try database(directory).read { db in
            (try Int.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema'"), try db.columns(in: "log").map(\.name))
        }
        XCTAssertEqual(version, 2)
        XCTAssertTrue(columns.contains("created"), "\(columns)")
        let reopened = try StoreFixtures.store(directory, model)
        guard case .success(let new?) = load(reopened, "new") else { return XCTFail("the new stream did not load") }
        XCTAssertEqual(new.snapshot.created, 42)
        reopened.close()
    }

    func test_open_newerSchema_isRefusedWithASentence() throws {
        let directory = try StoreFixtures.stateDirectory(self)
        try StoreFixtures.store(directory, model).close()
        try database(directory).write { db in try db.execute(sql: "UPDATE meta SET value = 3 WHERE key = 'schema'") }
        XCTAssertThrowsError(try StoreFixtures.store(directory, model)) {
            XCTAssertTrue("\($0)".contains("schema version 3; this recurd reads versions up to 2"), "\($0)")
        }
    }

    func test_discardStreams_deletesTheMatchingOnesButTheKept() throws {
        let directory = try StoreFixtures.stateDirectory(self)
        var store = try StoreFixtures.store(directory, model)
        for name in ["~1", "~2.00ff", "~3.0a", "named"] { try append(store, name) }
        store.checkpoint(StreamSnapshot(stream: "~4.0b", modelHash: 0, vocabularyHash: 0, offset: 0, scoredTokens: 0, lossSum: 0,
                                        created: 0, lastActivity: 0, owner: 0, state: [], logProbs: [], pendingText: []))
        store.close()
        store = try StoreFixtures.store(directory, model)
        XCTAssertEqual(store.discardStreams(where: { $0.hasPrefix("~") }, keeping: ["~2.00ff"]), ["~1", "~3.0a", "~4.0b"])
        XCTAssertEqual(store.storedStreamCount, 2)
        store.close()
        store = try StoreFixtures.store(directory, model)
        XCTAssertEqual(store.storedStreamCount, 2)
        for name in ["~1", "~3.0a", "~4.0b"] {
            guard case .success(nil) = load(store, name) else { return XCTFail("\(name) is still stored") }
        }
        guard case .success(_?) = load(store, "~2.00ff") else { return XCTFail("the kept stream is gone") }
        store.close()
    }
}

/// A value shared with completion handlers.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&value) } }
}
