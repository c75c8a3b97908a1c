import Foundation
import RecurCore
import RecurEngine
import RecurStore
import RecurStoreTestSupport
import XCTest

/// A stream keeps its owner in the store: after eviction or a restart another user still gets
/// permission_denied, and its owner continues it.
final class StoredOwnershipTests: XCTestCase {
    func test_storedStream_keepsItsOwner_acrossEvictionAndRestart() async throws {
        let model = StoreFixtures.model()
        let directory = try StoreFixtures.stateDirectory(self)
        var options = EngineOptions()
        options.maxResidentStreams = 1
        options.idleTimeout = nil
        for round in 0..<2 {
            let store = try StoreFixtures.store(directory, model)
            let engine = StreamEngine(model: model, options: options, store: store)
            engine.identify(client: 1, as: Caller(uid: 1000))
            engine.identify(client: 2, as: Caller(uid: 2000))
            engine.start()
            if round == 0 {
                _ = try await engine.feed(stream: "mine", tokens: [1, 2, 3], topK: 1, client: 1)
                _ = try await engine.feed(stream: "other", tokens: [4], topK: 1, client: 2)  // evicts "mine"
            }
            for attempt in ["info", "feed", "fork"] {
                do {
                    switch attempt {
                    case "info": _ = try await engine.info(stream: "mine", client: 2)
                    case "feed": _ = try await engine.feed(stream: "mine", tokens: [5], topK: 1, client: 2)
                    default: try await engine.fork(stream: "mine", into: "stolen-\(round)", client: 2)
                    }
                    XCTFail("round \(round): uid 2000's \(attempt) on uid 1000's stored stream succeeded")
                } catch {
                    XCTAssertEqual(error.kind, .permissionDenied, "round \(round), \(attempt): \(error)")
                }
            }
            do {
                _ = try await engine.info(stream: "stolen-\(round)", client: 2)
                XCTFail("the refused fork left its target behind")
            } catch {
                XCTAssertEqual(error.kind, .unknownStream, "\(error)")
            }
            let info = try await engine.info(stream: "mine", client: 1)
            XCTAssertEqual(info.offset, 3 + round)
            _ = try await engine.feed(stream: "mine", tokens: [6], topK: 1, client: 1)
            engine.shutdown()
            store.close()
        }
    }
}
