import RecurCore
import XCTest
@testable import RecurEngine

/// Streams belong to the Unix user whose request created them; other users get
/// `permission_denied`, admins may do everything, and the per-user stream limit holds.
final class OwnershipTests: XCTestCase {
    let model = Fixtures.model()
    let alice = Caller(uid: 1000), bob = Caller(uid: 1001)
    let admin = Caller(uid: 0, actsOnAll: true, exemptFromLimits: true)

    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    func engine(options: EngineOptions = .init()) -> StreamEngine {
        let engine = StreamEngine.started(model: model, options: options)
        engine.identify(client: 1, as: alice)
        engine.identify(client: 2, as: bob)
        engine.identify(client: 3, as: admin)
        engine.identify(client: 4, as: alice)  // alice's second connection
        return engine
    }

    func test_anotherUsersRequests_areDeniedAndChangeNothing() async throws {
        let engine = engine()
        defer { engine.shutdown() }
        let events = try await engine.feed(stream: "mine", text: bytes("abc"), topK: nil, client: 1)
        let owner = try await engine.info(stream: "mine", client: 1).owner
        XCTAssertEqual(owner, 1000)

        await assertThrowsKind(.permissionDenied) { try await engine.feed(stream: "mine", text: self.bytes("d"), topK: nil, client: 2) }
        await assertThrowsKind(.permissionDenied) { try await engine.feed(stream: "mine", tokens: [0], topK: nil, client: 2) }
        await assertThrowsKind(.permissionDenied) {
            try await engine.predict(stream: "mine", count: 3, temperature: 0, topK: nil, seed: nil, client: 2)
        }
        await assertThrowsKind(.permissionDenied) { try await engine.info(stream: "mine", client: 2) }
        await assertThrowsKind(.permissionDenied) { try await engine.fork(stream: "mine", into: "theirs", client: 2) }
        await assertThrowsKind(.permissionDenied) { try await engine.reset(stream: "mine", client: 2) }
        let denied = await assertThrowsKind(.permissionDenied) { try await engine.end(stream: "mine", client: 2) }
        XCTAssertEqual(denied?.description.contains("uid 1000"), true, denied?.description ?? "")

        // Nothing changed: same offset, the fork target was not created, alice continues exactly.
        let offset = try await engine.info(stream: "mine", client: 1).offset
        XCTAssertEqual(offset, 3)
        await assertThrowsKind(.unknownStream) { try await engine.info(stream: "theirs", client: 2) }
        let more = try await engine.feed(stream: "mine", text: bytes("de"), topK: nil, client: 4)
        Fixtures.assertMatchesOffline(events + more, model: model, tokens: try model.vocabulary.encode("abcde"), stream: "mine")
    }

    func test_list_showsTheCallersStreams_andAnAdminSeesAll() async throws {
        let engine = engine()
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "a1", text: bytes("a"), topK: nil, client: 1)
        _ = try await engine.feed(stream: "a2", text: bytes("b"), topK: nil, client: 4)
        _ = try await engine.feed(stream: "b1", text: bytes("c"), topK: nil, client: 2)
        let forAlice = await engine.list(client: 1).map(\.stream)
        let forBob = await engine.list(client: 2).map(\.stream)
        let forAdmin = await engine.list(client: 3).map { "\($0.stream):\($0.owner)" }
        XCTAssertEqual(forAlice, ["a1", "a2"])
        XCTAssertEqual(forBob, ["b1"])
        XCTAssertEqual(forAdmin, ["a1:1000", "a2:1000", "b1:1001"])
    }

    func test_admin_mayUseEveryStream_andAForkBelongsToWhoeverForked() async throws {
        let engine = engine()
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "s", text: bytes("ab"), topK: nil, client: 1)
        _ = try await engine.feed(stream: "s", text: bytes("c"), topK: nil, client: 3)
        let offset = try await engine.info(stream: "s", client: 3).offset
        XCTAssertEqual(offset, 3)
        try await engine.fork(stream: "s", into: "copy", client: 3)
        let copyOwner = try await engine.info(stream: "copy", client: 3).owner
        XCTAssertEqual(copyOwner, 0)
        await assertThrowsKind(.permissionDenied) { try await engine.info(stream: "copy", client: 1) }
        try await engine.fork(stream: "s", into: "alices", client: 1)
        let forkOwner = try await engine.info(stream: "alices", client: 1).owner
        XCTAssertEqual(forkOwner, 1000)
        try await engine.reset(stream: "s", client: 3)
        try await engine.end(stream: "s", client: 3)
        await assertThrowsKind(.unknownStream) { try await engine.info(stream: "s", client: 1) }
    }

    func test_endedName_isFreeForAnotherUser() async throws {
        let engine = engine()
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "n", text: bytes("ab"), topK: nil, client: 1)
        try await engine.end(stream: "n", client: 1)
        _ = try await engine.feed(stream: "n", text: bytes("c"), topK: nil, client: 2)
        let info = try await engine.info(stream: "n", client: 2)
        XCTAssertEqual(info.owner, 1001)
        XCTAssertEqual(info.offset, 1)
    }

    func test_unidentifiedClients_actAsTheDaemonsOwnUser() async throws {
        let engine = engine()
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "pipe", text: bytes("a"), topK: nil, client: 0)
        let owner = try await engine.info(stream: "pipe").owner
        XCTAssertEqual(owner, Caller.process.uid)
        if Caller.process.uid != alice.uid {
            await assertThrowsKind(.permissionDenied) { try await engine.info(stream: "pipe", client: 1) }
        }
    }

    func test_streamsPerUserLimit_refusesTheNextStream_perUser_andEndingFreesASlot() async throws {
        var options = EngineOptions()
        options.maxStreamsPerUser = 2
        let engine = engine(options: options)
        defer { engine.shutdown() }
        _ = try await engine.feed(stream: "a1", text: bytes("a"), topK: nil, client: 1)
        _ = try await engine.feed(stream: "a2", text: bytes("a"), topK: nil, client: 4)
        let refused = await assertThrowsKind(.quotaExceeded) { try await engine.feed(stream: "a3", text: self.bytes("a"), topK: nil, client: 1) }
        XCTAssertEqual(refused?.description.contains("2 streams"), true, refused?.description ?? "")
        await assertThrowsKind(.quotaExceeded) { try await engine.fork(stream: "a1", into: "a4", client: 1) }
        // Feeding the streams alice has still works; the refused names were not created.
        _ = try await engine.feed(stream: "a1", text: bytes("b"), topK: nil, client: 1)
        let names = await engine.list(client: 3).map(\.stream)
        XCTAssertEqual(names, ["a1", "a2"])
        // Other users and exempt callers are not affected.
        _ = try await engine.feed(stream: "b1", text: bytes("a"), topK: nil, client: 2)
        _ = try await engine.feed(stream: "b2", text: bytes("a"), topK: nil, client: 2)
        for i in 0..<3 { _ = try await engine.feed(stream: "root\(i)", text: bytes("a"), topK: nil, client: 3) }
        try await engine.end(stream: "a2", client: 4)
        _ = try await engine.feed(stream: "a3", text: bytes("a"), topK: nil, client: 1)
        let remaining = await engine.list(client: 1).map(\.stream)
        XCTAssertEqual(remaining, ["a1", "a3"])
    }
}
