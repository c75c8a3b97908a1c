import Foundation
import RecurCore
import RecurEngine
import RecurStore
import RecurStoreTestSupport
import XCTest

/// A full disk (SQLite's max_page_count) never makes a stream vanish: one that cannot be
/// stored stays resident over the bound, and a failed `end` leaves the store's count as it was.
final class FullDiskTests: XCTestCase {
    func store(_ test: XCTestCase, _ model: Model, durability: Durability) throws -> StateStore {
        var options = StateStore.Options()
        options.lockWait = 0
        options.durability = durability
        options.maximumPages = 8  // the schema fits; a few rows more do not
        return try StateStore(directory: try StoreFixtures.stateDirectory(test), fingerprint: ModelFingerprint(of: model),
                              options: options)
    }

    func test_evictionOntoAFullDisk_keepsEveryStreamResident_durabilityOff() async throws {
        let model = StoreFixtures.model()
        let store = try store(self, model, durability: .off)
        var options = EngineOptions()
        options.maxResidentStreams = 1
        options.idleTimeout = nil
        let engine = StreamEngine(model: model, options: options, store: store)
        engine.start()
        defer { engine.shutdown(); store.close() }
        var created: [String] = []
        var stats = await engine.stats()
        // Each new stream moves the previous ones to the store, until the disk is full and a
        // stream that could not be stored is left resident, over the bound. The engine tries
        // such a stream again now and then, and while a try is in flight it does not count
        // against the bound; a try may even succeed (the failed transaction held more than the
        // one stream). So after a failure, look a moment for a snapshot between tries, and
        // fill the disk further if the stream found room after all.
        for i in 0..<2000 where stats.streamsOverBound == 0 {
            let name = "s\(i)"
            _ = try await engine.feed(stream: name, tokens: Array(repeating: Int32(i % 5), count: 8), topK: 1, client: 1)
            created.append(name)
            stats = await engine.stats()
            let deadline = Date().addingTimeInterval(0.5)
            while stats.failedMovesToStore > 0, stats.streamsOverBound == 0, Date() < deadline {
                try await Task.sleep(for: .milliseconds(5))
                stats = await engine.stats()
            }
        }
        XCTAssertGreaterThan(stats.failedMovesToStore, 0, "the disk never filled: \(stats)")
        XCTAssertGreaterThan(stats.streamsOverBound, 0, "no stream stayed over the bound after failed moves: \(stats)")
        XCTAssertEqual(stats.streams, 1 + stats.streamsOverBound, "\(stats)")
        // Long after the store stopped retrying, every stream is still there.
        for name in created {
            do {
                let info = try await engine.info(stream: name)
                XCTAssertEqual(info.offset, 8, name)
            } catch {
                XCTFail("stream \(name) vanished on a full disk: \(error)")
            }
        }
    }

    func test_failedEndOnAFullDisk_leavesTheStoredCountAlone() async throws {
        let model = StoreFixtures.model()
        let store = try store(self, model, durability: .off)
        var options = EngineOptions()
        options.idleTimeout = nil
        options.checkpointInterval = 8
        let engine = StreamEngine(model: model, options: options, store: store)
        engine.start()
        defer { engine.shutdown(); store.close() }
        _ = try await engine.feed(stream: "keep", tokens: Array(repeating: 1, count: 8), topK: 1, client: 1)
        // Periodic checkpoints of new streams until one fails: the store retries it in every
        // transaction for a while, so the next ones fail too (a full disk for a moment).
        for i in 0..<2000 where store.currentStatistics().failures == 0 {
            _ = try await engine.feed(stream: "s\(i)", tokens: Array(repeating: Int32(i % 5), count: 8), topK: 1, client: 1)
        }
        XCTAssertGreaterThan(store.currentStatistics().failures, 0, "the disk never filled")
        let before = await engine.stats().storedStreams
        do {
            try await engine.end(stream: "keep", client: 1)
            XCTFail("an end on a full disk succeeded")
        } catch {
            XCTAssertEqual(error.kind, .internal, "\(error)")
        }
        let after = await engine.stats().storedStreams
        XCTAssertEqual(after, before, "a failed end changed the stored count")
        let info = try await engine.info(stream: "keep")
        XCTAssertEqual(info.offset, 8)
    }
}
