import Foundation
import Logging
@testable import RecurCluster
import RecurCore
import RecurEngine
import RecurStore
import RecurStoreTestSupport
import RecurTestSupport
import XCTest

/// The PostgreSQL store against a real, private PostgreSQL server: what an engine absorbed
/// comes back exactly in a new process, whatever the chunking; a write under a stale lease
/// epoch is refused by the fence and changes nothing; groups are adopted and relinquished.
final class ClusterStoreTests: XCTestCase {
    private static let logger = Logger(label: "test")

    private func store(_ server: PostgresServer, node: String = "a", groups: Int = 8, model: Model,
                       durability: Durability = .strict) throws -> PostgresStateStore {
        var options = PostgresStateStore.Options()
        options.durability = durability
        return try PostgresStateStore(database: try ClusterDatabase(url: server.url), node: node, groups: groups,
                                      fingerprint: ModelFingerprint(of: model), options: options, logger: Self.logger)
    }

    /// Takes every group's lease for `node` in PostgreSQL (as a lease keeper would) and adopts them.
    private func holdAll(_ store: PostgresStateStore, _ server: PostgresServer) throws {
        let rows = try server.psql("""
            UPDATE recur_lease SET node = '\(store.node)', epoch = epoch + 1, expires = now() + interval '1 hour'
            RETURNING grp || ',' || epoch
            """)
        var groups: [Int: Int64] = [:]
        for line in rows.split(separator: "\n") {
            let parts = line.split(separator: ",")
            groups[Int(parts[0])!] = Int64(parts[1])!
        }
        XCTAssertEqual(groups.count, store.groupCount)
        try store.adopt(groups)
    }

    private func engine(_ model: Model, _ store: PostgresStateStore) -> StreamEngine {
        var options = EngineOptions()
        options.checkpointInterval = 7
        options.sweepInterval = 0.05
        options.maxTokensPerFeedJob = 16
        let engine = StreamEngine(model: model, options: options, store: store)
        engine.start()
        return engine
    }

    func test_streamsFedInChunks_comeBackExactlyInANewProcess() async throws {
        let server = try PostgresServer()
        let model = StoreFixtures.model()
        var store = try store(server, model: model)
        try holdAll(store, server)
        let first = engine(model, store)
        var rng = TestRNG(seed: 11)
        let scalars = Array(StoreFixtures.alphabet.unicodeScalars)
        var texts: [String: String] = [:]
        for s in 0..<12 {
            var text = String.UnicodeScalarView()
            for _ in 0..<(20 + rng.below(40)) { text.append(scalars[rng.below(scalars.count)]) }
            texts["s\(s)"] = String(text)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, text) in texts {
                group.addTask {
                    let bytes = Array(text.utf8)
                    var i = 0, n = 1
                    while i < bytes.count {
                        let end = min(bytes.count, i + n)
                        _ = try await first.feed(stream: name, text: Array(bytes[i..<end]), topK: 1, client: 1)
                        i = end
                        n = n % 7 + 1
                    }
                }
            }
            try await group.waitForAll()
        }
        // A crash: nothing more is saved (no graceful stop). A new store and engine find every
        // stream in PostgreSQL, exactly.
        first.hangForTesting()
        store = try self.store(server, model: model)
        XCTAssertEqual(store.storedStreamCount, 0, "no group held yet: nothing is served")
        try holdAll(store, server)
        XCTAssertEqual(store.storedStreamCount, texts.count)
        let engine = self.engine(model, store)
        for (name, text) in texts.sorted(by: { $0.key < $1.key }) {
            let tokens = StoreFixtures.tokens(text, model)
            let info = try await engine.info(stream: name)
            XCTAssertEqual(info.offset, tokens.count, name)
            try await StoreFixtures.assertContinuationEqualsOffline(engine, stream: name, tokens: tokens, next: 3, model: model)
        }
        engine.shutdown()
        store.close()
    }

    func test_writeUnderStaleEpoch_isRefusedByTheFence_andChangesNothing() async throws {
        let server = try PostgresServer()
        let model = StoreFixtures.model()
        let store = try store(server, groups: 4, model: model)
        try holdAll(store, server)
        let engine = engine(model, store)
        _ = try await engine.feed(stream: "x", text: Array("abc".utf8), topK: 1, client: 1)
        let group = store.group(of: "x")
        // Another node takes the group over (bumps its epoch) while this one still believes it holds it.
        try server.psql("UPDATE recur_lease SET node = 'b', epoch = epoch + 1 WHERE grp = \(group)")
        do {
            _ = try await engine.feed(stream: "x", text: Array("def".utf8), topK: 1, client: 1)
            XCTFail("a write under a stale epoch was accepted")
        } catch {
            XCTAssertEqual(error.kind, .internal)
            XCTAssertTrue("\(error)".contains("no longer holds the lease"), "\(error)")
        }
        let logged = try server.psql("SELECT coalesce(max(end_offset), 0) FROM recur_log WHERE stream = 'x'")
        XCTAssertEqual(logged.trimmingCharacters(in: .whitespacesAndNewlines), "3", "only the first feed is in the log")
        XCTAssertEqual(store.currentStatistics().fenced, 1)
        // Relinquished: requests for its streams are refused with a sentence naming the group.
        store.relinquish([group])
        await engine.release(streamsWhere: { store.group(of: $0) == group }, save: false)
        do {
            _ = try await engine.info(stream: "x")
            XCTFail("a stream of a group not held was served")
        } catch {
            XCTAssertEqual(error.kind, .moved)
            XCTAssertTrue("\(error)".contains("key group \(group)"), "\(error)")
        }
        let stats = await engine.stats()
        XCTAssertEqual(stats.streamsReleased, 1)
        engine.shutdown()
        store.close()
    }

    func test_schema_isVersioned_andGroupsAreFixedAtCreation() throws {
        let server = try PostgresServer()
        let model = StoreFixtures.model()
        let first = try store(server, groups: 16, model: model)
        first.close()
        let second = try store(server, groups: 99, model: model)
        XCTAssertEqual(second.groupCount, 16, "a later node takes the cluster's number of groups")
        second.close()
        try server.psql("UPDATE recur_meta SET value = 99 WHERE key = 'schema'")
        XCTAssertThrowsError(try store(server, model: model)) { error in
            XCTAssertTrue("\(error)".contains("schema has version 99"), "\(error)")
        }
    }
}
