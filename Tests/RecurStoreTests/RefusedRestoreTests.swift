import Foundation
import RecurCore
import RecurEngine
import RecurStore
import RecurStoreTestSupport
import XCTest

/// Another user's request on a stream in the store is refused before it changes anything: no
/// load made resident, no subscription, no activity, nothing counted against the owner's limit.
final class RefusedRestoreTests: XCTestCase {
    final class Notices: @unchecked Sendable {
        private let lock = NSLock()
        private var seen: [(StreamNotice, [ClientID])] = []
        func record(_ notice: StreamNotice, _ clients: [ClientID]) { lock.withLock { seen.append((notice, clients)) } }
        var all: [(StreamNotice, [ClientID])] { lock.withLock { seen } }
    }

    /// Every kind of request client 2 can make on `name`.
    func attempt(_ kind: String, on name: String, _ engine: StreamEngine) async throws(EngineError) {
        switch kind {
        case "info": _ = try await engine.info(stream: name, client: 2)
        case "feed": _ = try await engine.feed(stream: name, tokens: [5], topK: 1, client: 2)
        case "predict": _ = try await engine.predict(stream: name, count: 2, temperature: 0, topK: nil, seed: 1, client: 2)
        case "reset": try await engine.reset(stream: name, client: 2)
        case "end": try await engine.end(stream: name, client: 2)
        default: try await engine.fork(stream: name, into: "stolen", client: 2)
        }
    }

    static let kinds = ["info", "feed", "predict", "reset", "end", "fork"]

    /// The engine turned once more: notices of earlier requests are delivered.
    func turn(_ engine: StreamEngine) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in engine.requestHeartbeat { done.resume() } }
    }

    func test_refusedRequestOnAnEvictedStream_subscribesNothing_touchesNothing_loadsNothing() async throws {
        let model = StoreFixtures.model()
        for kind in Self.kinds {
            let directory = try StoreFixtures.stateDirectory(self)
            let store = try StoreFixtures.store(directory, model)
            var options = EngineOptions()
            options.maxResidentStreams = 1
            options.idleTimeout = nil
            let engine = StreamEngine(model: model, options: options, store: store)
            let notices = Notices()
            engine.setNoticeHandler { notices.record($0, $1) }
            engine.identify(client: 1, as: Caller(uid: 1000))
            engine.identify(client: 2, as: Caller(uid: 2000))
            engine.start()
            _ = try await engine.feed(stream: "secret", tokens: [1, 2, 3], topK: 1, client: 1)
            let before = try await engine.info(stream: "secret", client: 1)
            _ = try await engine.feed(stream: "other", tokens: [4], topK: 1, client: 2)  // "secret" goes to the store
            do {
                try await attempt(kind, on: "secret", engine)
                XCTFail("\(kind): uid 2000 used uid 1000's stored stream")
            } catch {
                XCTAssertEqual(error.kind, .permissionDenied, "\(kind): \(error)")
            }
            XCTAssertEqual(engine.subscriptions(of: 2), ["other"], "\(kind): the refused client was subscribed")
            let stats = await engine.stats()
            XCTAssertEqual(stats.streamsRestored, 0, "\(kind): a refused request loaded the stream")
            let listed = await engine.list(client: 2).map(\.stream)
            XCTAssertEqual(listed, ["other"], "\(kind): a refused request evicted another user's stream")
            let after = try await engine.info(stream: "secret", client: 1)
            XCTAssertEqual(after.lastActivity, before.lastActivity, "\(kind): a refused request touched the stream")
            XCTAssertEqual(after.offset, 3)
            try await engine.reset(stream: "secret", client: 1)
            try await engine.end(stream: "secret", client: 1)
            await turn(engine)
            let toldTwo = notices.all.filter { $0.1.contains(2) }
            XCTAssertEqual(toldTwo.map(\.0.kind), [], "\(kind): the refused client heard of the owner's stream")
            engine.shutdown()
            store.close()
        }
    }

    func test_refusedRequestsOnStoredStreams_countAgainstNoOnesLimit() async throws {
        let model = StoreFixtures.model()
        let directory = try StoreFixtures.stateDirectory(self)
        var options = EngineOptions()
        options.maxStreamsPerUser = 2
        options.idleTimeout = nil
        for round in 0..<2 {
            let store = try StoreFixtures.store(directory, model)
            let engine = StreamEngine(model: model, options: options, store: store)
            engine.identify(client: 1, as: Caller(uid: 65534))
            engine.identify(client: 2, as: Caller(uid: 1234))
            engine.start()
            if round == 0 {
                _ = try await engine.feed(stream: "a1", tokens: [1], topK: 1, client: 1)
                _ = try await engine.feed(stream: "a2", tokens: [2], topK: 1, client: 1)
            } else {
                // After the restart a1 and a2 are in the store only.
                for name in ["a1", "a2"] {
                    for kind in Self.kinds {
                        do {
                            try await attempt(kind, on: name, engine)
                            XCTFail("\(kind) \(name) by uid 1234 succeeded")
                        } catch {
                            XCTAssertEqual(error.kind, .permissionDenied, "\(kind) \(name): \(error)")
                        }
                    }
                }
                for name in ["b1", "b2"] {
                    do {
                        _ = try await engine.feed(stream: name, tokens: [3], topK: 1, client: 1)
                    } catch {
                        XCTFail("uid 65534's feed of \(name) after uid 1234's refused requests: \(error)")
                    }
                }
                let stats = await engine.stats()
                XCTAssertEqual(stats.streams, 2)
                XCTAssertEqual(stats.streamsRestored, 0)
            }
            engine.shutdown()
            store.close()
        }
    }
}
