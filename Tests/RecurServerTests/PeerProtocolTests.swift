import NIOCore
import RecurEngine
@testable import RecurServer
import XCTest

/// The peer links' hello carries a forwarded client's identity: it survives the round trip
/// whatever the node's name, and nothing else passes for one.
final class PeerProtocolTests: XCTestCase {
    func test_hello_roundTrips_theCallerAndTheNode() {
        for (caller, node) in [(Caller(uid: 65534), "a"), (Caller(uid: 0, actsOnAll: true, exemptFromLimits: true), #"n"o\de é"#),
                               (Caller(uid: UInt32.max, actsOnAll: false, exemptFromLimits: true), "node-17.example")] {
            var line = PeerProtocol.hello(caller, from: node)
            XCTAssertEqual(line.readableBytesView.last, UInt8(ascii: "\n"))
            line.moveWriterIndex(to: line.writerIndex - 1)
            let parsed = PeerProtocol.parseHello(line)
            XCTAssertEqual(parsed?.0, caller)
            XCTAssertEqual(parsed?.1, node)
        }
    }

    func test_anythingElse_isNotAHello() {
        for text in [#"{"op":"feed","stream":"s","text":"x"}"#, #"{"peer_hello":"a","uid":-1,"acts_on_all":true,"exempt":true}"#,
                     #"{"peer_hello":"a","uid":5,"acts_on_all":"yes","exempt":true}"#, "not json", #"{"peer_hello":7}"#] {
            XCTAssertNil(PeerProtocol.parseHello(ByteBuffer(string: text)), text)
        }
    }

    func test_aMovedErrorReply_isToldFromOtherReplies() {
        XCTAssertTrue(Session.isMovedError(ByteBuffer(string: #"{"id":3,"error":{"code":"moved","message":"m"}}"#)))
        XCTAssertFalse(Session.isMovedError(ByteBuffer(string: #"{"id":3,"error":{"code":"busy","message":"moved"}}"#)))
        XCTAssertFalse(Session.isMovedError(ByteBuffer(string: #"{"op":"info","stream":"moved"}"#)))
    }
}
