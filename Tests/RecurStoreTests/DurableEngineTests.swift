import Foundation
import GRDB
import RecurCore
import RecurEngine
import RecurStore
import RecurStoreTestSupport
import RecurTestSupport
import XCTest

/// An engine over a real SQLite store: what streams absorbed survives a graceful stop and a
/// crash image, evicted streams come back exactly, and the store stays bounded.
final class DurableEngineTests: XCTestCase {
    private func engine(_ model: Model, _ store: StateStore, resident: Int = 10_000, checkpointInterval: Int = 4096,
                        idleTimeout: Double? = nil) -> StreamEngine {
        var options = EngineOptions()
        options.maxResidentStreams = resident
        options.checkpointInterval = checkpointInterval
        options.idleTimeout = idleTimeout
        options.sweepInterval = 0.05
        options.maxTokensPerFeedJob = 16
        let engine = StreamEngine(model: model, options: options, store: store)
        engine.start()
        return engine
    }

    /// Feeds `count` streams random text in random chunks (both drawn from `seed`); returns each
    /// stream's bytes.
    private func feedStreams(_ engine: StreamEngine, count: Int, characters: Int, seed: UInt64,
                             concurrently: Bool = true) async throws -> [String: [UInt8]] {
        var texts: [String: [UInt8]] = [:]
        var chunkings: [(name: String, chunks: [[UInt8]])] = []
        var rng = TestRNG(seed: seed)
        let scalars = Array(StoreFixtures.alphabet.unicodeScalars)
        for s in 0..<count {
            var text = String.UnicodeScalarView()
            for _ in 0..<characters { text.append(scalars[rng.below(scalars.count)]) }
            let bytes = Array(String(text).utf8)
            var chunks: [[UInt8]] = []
            var i = 0
            while i < bytes.count {
                let n = min(1 + rng.below(9), bytes.count - i)
                chunks.append(Array(bytes[i..<(i + n)]))
                i += n
            }
            texts["s\(s)"] = bytes
            chunkings.append(("s\(s)", chunks))
        }
        @Sendable func feed(_ name: String, _ chunks: [[UInt8]]) async throws {
            for chunk in chunks { _ = try await engine.feed(stream: name, text: chunk, topK: 1, client: 1) }
        }
        if !concurrently {
            for (name, chunks) in chunkings { try await feed(name, chunks) }
            return texts
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, chunks) in chunkings { group.addTask { try await feed(name, chunks) } }
            try await group.waitForAll()
        }
        return texts
    }

    /// The files as a crash leaves them: the database and its WAL copied while the store is
    /// open, before any checkpoint a stop would write.
    private func crashImage(of directory: String) throws -> String {
        let crashed = try StoreFixtures.stateDirectory(self)
        try FileManager.default.createDirectory(atPath: crashed, withIntermediateDirectories: true)
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: directory + "/streams.sqlite" + suffix) {
            try FileManager.default.copyItem(atPath: directory + "/streams.sqlite" + suffix, toPath: crashed + "/streams.sqlite" + suffix)
        }
        return crashed
    }

    private func assertStreamsExact(_ engine: StreamEngine, _ texts: [String: [UInt8]], _ model: Model,
                                    file: StaticString = #filePath, line: UInt = #line) async throws {
        for (name, bytes) in texts.sorted(by: { $0.key < $1.key }) {
            let tokens = StoreFixtures.tokens(String(decoding: bytes, as: UTF8.self), model)
            let info = try await engine.info(stream: name)
            XCTAssertEqual(info.offset, tokens.count, "offset of \(name)", file: file, line: line)
            try await StoreFixtures.assertContinuationEqualsOffline(engine, stream: name, tokens: tokens, next: 3, model: model,
                                                                    file: file, line: line)
        }
    }

    func test_gracefulStop_thenNewProcess_restoresEveryStreamExactly() async throws {
        let model = StoreFixtures.model()
        let directory = try StoreFixtures.stateDirectory(self)
        var store = try StoreFixtures.store(directory, model)
        var engine = engine(model, store)
        let texts = try await feedStreams(engine, count: 24, characters: 60, seed: 1)
        // A stream whose text ends inside a UTF-8 sequence: the held bytes survive too.
        _ = try await engine.feed(stream: "held", text: Array("ab".utf8) + [0xE6, 0xBC], topK: 1, client: 1)
        engine.shutdown()
        store.close()

        store = try StoreFixtures.store(directory, model)
        engine = self.engine(model, store)
        defer { engine.shutdown(); store.close() }
        try await assertStreamsExact(engine, texts, model)
        let held = try await engine.info(stream: "held")
        XCTAssertEqual(held.pendingText, 2)
        let rest = try await engine.feed(stream: "held", text: [0xA2] + Array("c".utf8), topK: 1, client: 1)
        XCTAssertEqual(rest.map(\.token), StoreFixtures.tokens("漢c", model))
        XCTAssertEqual(rest.first?.offset, 3)
    }

    func test_crashImage_recoversFromCheckpointsAndTheLoggedTail() async throws {
        let model = StoreFixtures.model()
        let directory = try StoreFixtures.stateDirectory(self)
        let store = try StoreFixtures.store(directory, model, durability: .batched)
        let engine = engine(model, store, checkpointInterval: 7)
        let texts = try await feedStreams(engine, count: 16, characters: 80, seed: 2)
        let crashed = try crashImage(of: directory)
        engine.shutdown()
        store.close()

        let recoveredStore = try StoreFixtures.store(crashed, model)
        let recovered = self.engine(model, recoveredStore)
        defer { recovered.shutdown(); recoveredStore.close() }
        try await assertStreamsExact(recovered, texts, model)
    }

    /// A feed that completes no token (it ends inside a UTF-8 sequence, or inside a word) is
    /// still acknowledged: what it left held back must survive a crash like its tokens would.
    func test_crashImage_keepsTextHeldBackByFeedsThatCompletedNoToken() async throws {
        let model = StoreFixtures.model()
        let directory = try StoreFixtures.stateDirectory(self)
        let store = try StoreFixtures.store(directory, model, durability: .strict)
        let engine = engine(model, store, checkpointInterval: 1)
        // After tokens and a checkpoint at the same offset: two feeds of one byte each.
        _ = try await engine.feed(stream: "after", text: Array("ab".utf8), topK: 1, client: 1)
        for byte: UInt8 in [0xE6, 0xBC] {
            let events = try await engine.feed(stream: "after", text: [byte], topK: 1, client: 1)
            XCTAssertEqual(events.count, 0)
        }
        // A stream that never completed a token at all.
        _ = try await engine.feed(stream: "only", text: [0xE6], topK: 1, client: 1)
        let crashed = try crashImage(of: directory)
        engine.shutdown()
        store.close()

        let recoveredStore = try StoreFixtures.store(crashed, model)
        let recovered = self.engine(model, recoveredStore)
        defer { recovered.shutdown(); recoveredStore.close() }
        let after = try await recovered.info(stream: "after")
        XCTAssertEqual(after.offset, 2)
        XCTAssertEqual(after.pendingText, 2)
        let rest = try await recovered.feed(stream: "after", text: [0xA2], topK: 1, client: 1)
        XCTAssertEqual(rest.map(\.token), StoreFixtures.tokens("漢", model))
        XCTAssertEqual(rest.first?.offset, 3)
        let only = try await recovered.info(stream: "only")
        XCTAssertEqual(only.offset, 0)
        XCTAssertEqual(only.pendingText, 1)
        let first = try await recovered.feed(stream: "only", text: [0xBC, 0xA2], topK: 1, client: 1)
        XCTAssertEqual(first.map(\.token), StoreFixtures.tokens("漢", model))
    }

    func test_streamsBeyondTheResidentBound_areStoredAndComeBackExactly() async throws {
        let model = StoreFixtures.model()
        let store = try StoreFixtures.store(try StoreFixtures.stateDirectory(self), model, durability: .off)
        let engine = engine(model, store, resident: 4)
        defer { engine.shutdown(); store.close() }
        // One at a time: with every resident stream busy, a new one is refused (busy).
        let texts = try await feedStreams(engine, count: 30, characters: 40, seed: 3, concurrently: false)
        let resident = await engine.stats().streams
        XCTAssertLessThanOrEqual(resident, 4)
        try await assertStreamsExact(engine, texts, model)
        let after = await engine.stats().streams
        XCTAssertLessThanOrEqual(after, 4)
    }

    func test_idleStreams_expireIntoTheStore_andComeBackOnTheirNextRequest() async throws {
        let model = StoreFixtures.model()
        let store = try StoreFixtures.store(try StoreFixtures.stateDirectory(self), model)
        let engine = engine(model, store, idleTimeout: 0.1)
        defer { engine.shutdown(); store.close() }
        let texts = try await feedStreams(engine, count: 5, characters: 30, seed: 4)
        // Expired streams leave memory.
        try await eventually("every idle stream expired", { await engine.list().map(\.stream) }, until: { $0.isEmpty })
        try await assertStreamsExact(engine, texts, model)
    }

    func test_endResetAndFork_areDurable() async throws {
        let model = StoreFixtures.model()
        let directory = try StoreFixtures.stateDirectory(self)
        var store = try StoreFixtures.store(directory, model)
        var engine = engine(model, store)
        let a = StoreFixtures.tokens("abc defg", model)
        _ = try await engine.feed(stream: "a", tokens: a, topK: 1, client: 1)
        _ = try await engine.feed(stream: "gone", tokens: a, topK: 1, client: 1)
        _ = try await engine.feed(stream: "reset", tokens: a, topK: 1, client: 1)
        try await engine.fork(stream: "a", into: "a2", client: 1)
        try await engine.end(stream: "gone", client: 1)
        try await engine.reset(stream: "reset", client: 1)
        let crashed = try crashImage(of: directory)
        engine.shutdown()
        store.close()

        store = try StoreFixtures.store(crashed, model)
        engine = self.engine(model, store)
        defer { engine.shutdown(); store.close() }
        do {
            _ = try await engine.info(stream: "gone")
            XCTFail("an ended stream came back")
        } catch {
            XCTAssertEqual(error.kind, .unknownStream)
        }
        let resetInfo = try await engine.info(stream: "reset")
        XCTAssertEqual(resetInfo.offset, 0)
        try await StoreFixtures.assertContinuationEqualsOffline(engine, stream: "a2", tokens: a, next: 1, model: model)
        try await StoreFixtures.assertContinuationEqualsOffline(engine, stream: "a", tokens: a, next: 2, model: model)
    }

    func test_modelChange_rebuildsByReplay_orResetsWithANotice() async throws {
        let old = StoreFixtures.model(seed: 7), new = StoreFixtures.model(seed: 8)
        let directory = try StoreFixtures.stateDirectory(self)
        var store = try StoreFixtures.store(directory, old, replayHistory: 50)
        var engine = engine(old, store, checkpointInterval: 16)
        let short = StoreFixtures.tokens(String(repeating: "abc de", count: 5), old)    // 30 tokens: kept whole
        let long = StoreFixtures.tokens(String(repeating: "fgh ij", count: 20), old)    // 120: compacted
        _ = try await engine.feed(stream: "short", tokens: short, topK: 1, client: 1)
        _ = try await engine.feed(stream: "long", tokens: long, topK: 1, client: 1)
        try await engine.fork(stream: "short", into: "forked", client: 1)
        engine.shutdown()
        store.close()

        store = try StoreFixtures.store(directory, new, replayHistory: 50)
        engine = self.engine(new, store, checkpointInterval: 16)
        defer { engine.shutdown(); store.close() }
        let notices = NoticeBox()
        engine.setNoticeHandler { notice, clients in notices.add(notice, clients) }
        // Rebuilt: equal to the new model run over the same tokens.
        try await StoreFixtures.assertContinuationEqualsOffline(engine, stream: "short", tokens: short, next: 4, model: new)
        try await StoreFixtures.assertContinuationEqualsOffline(engine, stream: "forked", tokens: short, next: 5, model: new)
        // Too long to replay: reset, and the client that touched it is told.
        let events = try await engine.feed(stream: "long", tokens: [1], topK: 1, client: 9)
        XCTAssertEqual(events.first?.offset, 1)
        let seen = notices.all
        XCTAssertEqual(seen.count, 1, "\(seen)")
        XCTAssertEqual(seen.first?.0.kind, .reset)
        XCTAssertEqual(seen.first?.1, [9])
        XCTAssertTrue(seen.first?.0.message.contains("another model") == true, seen.first?.0.message ?? "")
    }

    func test_vocabularyChange_resetsStoredStreams() async throws {
        let old = StoreFixtures.model()
        let otherVocabulary = try Vocabulary.build(kind: .char, corpus: "xyz abc", unknownPolicy: .error)
        let new = StoreFixtures.model(vocabulary: otherVocabulary)
        let directory = try StoreFixtures.stateDirectory(self)
        var store = try StoreFixtures.store(directory, old)
        var engine = engine(old, store)
        _ = try await engine.feed(stream: "s", text: Array("abc".utf8), topK: 1, client: 1)
        engine.shutdown()
        store.close()
        store = try StoreFixtures.store(directory, new)
        engine = self.engine(new, store)
        defer { engine.shutdown(); store.close() }
        let info = try await engine.info(stream: "s")
        XCTAssertEqual(info.offset, 0)
    }

    func test_compaction_keepsTheLogBounded() async throws {
        let model = StoreFixtures.model()
        let directory = try StoreFixtures.stateDirectory(self)
        let store = try StoreFixtures.store(directory, model, replayHistory: 100)
        let engine = engine(model, store, checkpointInterval: 50)
        for _ in 0..<40 {
            _ = try await engine.feed(stream: "long", tokens: StoreFixtures.tokens(String(repeating: "abcdefghij", count: 5), model), topK: 1, client: 1)
        }
        engine.shutdown()
        store.close()
        let pool = try DatabaseQueue(path: directory + "/streams.sqlite")
        let logged = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT coalesce(sum(end_offset - \"offset\"), 0) FROM log")! }
        XCTAssertLessThanOrEqual(logged, 50, "2000 tokens absorbed, at most one checkpoint interval left in the log")
    }

    func test_handedOverSubscription_toAStoredStream_appliesWhenItIsRestored() async throws {
        let model = StoreFixtures.model()
        let directory = try StoreFixtures.stateDirectory(self)
        var store = try StoreFixtures.store(directory, model)
        var engine = engine(model, store)
        _ = try await engine.feed(stream: "s", tokens: [1, 2], topK: 1, client: 1)
        engine.shutdown()
        store.close()
        store = try StoreFixtures.store(directory, model)
        engine = self.engine(model, store)
        defer { engine.shutdown(); store.close() }
        let notices = NoticeBox()
        engine.setNoticeHandler { notice, clients in notices.add(notice, clients) }
        engine.subscribe(client: 7, to: ["s", "never-existed"])
        try await engine.reset(stream: "s", client: 1)
        try await eventually("the reset notice", { notices.all.map(\.0.kind) }, until: { !$0.isEmpty })
        XCTAssertEqual(notices.all.map(\.0.kind), [.reset])
        XCTAssertEqual(notices.all.first?.1, [7])
    }

    func test_stateDirectory_isPrivate_andLockedAgainstASecondDaemon() throws {
        let model = StoreFixtures.model()
        let directory = try StoreFixtures.stateDirectory(self)
        let store = try StoreFixtures.store(directory, model)
        defer { store.close() }
        let attributes = try FileManager.default.attributesOfItem(atPath: directory)
        XCTAssertEqual((attributes[.posixPermissions] as? Int), 0o700)
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let mode = try FileManager.default.attributesOfItem(atPath: directory + "/" + file)[.posixPermissions] as? Int
            XCTAssertEqual(mode, 0o600, file)
        }
        XCTAssertThrowsError(try StoreFixtures.store(directory, model)) { error in
            XCTAssertTrue("\(error)".contains("in use by another recurd"), "\(error)")
        }
    }
}

/// Notices collected from the engine thread.
final class NoticeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var notices: [(StreamNotice, [ClientID])] = []
    func add(_ notice: StreamNotice, _ clients: [ClientID]) { lock.withLock { notices.append((notice, clients)) } }
    var all: [(StreamNotice, [ClientID])] { lock.withLock { notices } }
}

/// A store that cannot write (a full disk): feeds fail with a clear `internal` error, nothing
/// is acknowledged that is not logged, and evicted streams stay loadable while their
/// checkpoints are retried.
final class StoreWriteFailureTests: XCTestCase {
    func test_fullDisk_failsFeedsClearly_andKeepsEvictedStreamsLoadable() async throws {
        let model = StoreFixtures.model()
        var options = StateStore.Options()
        options.lockWait = 0
        options.maximumPages = 8  // the schema fits; a few rows more do not
        let store = try StateStore(directory: try StoreFixtures.stateDirectory(self), fingerprint: ModelFingerprint(of: model),
                                   options: options)
        var engineOptions = EngineOptions()
        engineOptions.maxResidentStreams = 1
        engineOptions.idleTimeout = nil
        let engine = StreamEngine(model: model, options: engineOptions, store: store)
        engine.start()
        defer { engine.shutdown(); store.close() }
        var failure: EngineError?
        for i in 0..<200 where failure == nil {
            do {
                _ = try await engine.feed(stream: "s", tokens: Array(repeating: Int32(i % 5), count: 64), topK: 1, client: 1)
            } catch {
                failure = error
            }
        }
        XCTAssertEqual(failure?.kind, .internal)
        XCTAssertTrue(failure?.description.contains("could not log") == true, failure?.description ?? "no failure")
        let offset = try await engine.info(stream: "s").offset
        // Evicting "s" cannot be written to disk; it stays loadable from memory meanwhile.
        _ = try? await engine.feed(stream: "t", tokens: [1], topK: 1, client: 1)
        let back = try await engine.info(stream: "s").offset
        XCTAssertEqual(back, offset)
        XCTAssertGreaterThan(store.currentStatistics().failures, 0)
        XCTAssertNotNil(store.currentStatistics().lastError)
    }
}
