import Foundation
@testable import RecurServer
import XCTest

/// Private stream names never recur between servers, and a handed-over connection keeps its
/// own (issue 9, defect 1), including one handed over by a recurd that named them "~<id>".
final class PrivateStreamNameTests: XCTestCase {
    func test_privateStream_sameConnectionNumber_differsBetweenServerStarts() {
        let first = StreamName.privateStream(of: 1, tag: UInt64.random(in: 0...UInt64.max))
        let second = StreamName.privateStream(of: 1, tag: UInt64.random(in: 0...UInt64.max))
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(StreamName.privateStream(of: 7, tag: 0xAB), "~7.00000000000000ab")
        XCTAssertTrue(StreamName.isPrivate(first))
        // No client can name one.
        XCTAssertNotNil(StreamName.problem(with: first, field: "stream"))
    }

    func test_handedOverConnection_keepsItsRecordedPrivateStream() throws {
        let record = HandedOverConnection(id: 3, name: "recurd-conn-3", privateStream: "~3.0123456789abcdef",
                                          input: UnframedInput(bytes: [], discarding: false), usedPrivateStream: true, subscriptions: [])
        let decoded = try JSONDecoder().decode(HandedOverConnection.self, from: JSONEncoder().encode(record))
        XCTAssertEqual(decoded.privateStreamName, "~3.0123456789abcdef")
    }

    func test_handedOverConnection_fromAnOlderRecurd_keepsTheOldName() throws {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(
            HandedOverConnection(id: 4, name: "recurd-conn-4", privateStream: nil, input: UnframedInput(bytes: [], discarding: false),
                                 usedPrivateStream: true, subscriptions: []))) as? [String: Any])
        object["privateStream"] = nil
        let decoded = try JSONDecoder().decode(HandedOverConnection.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(decoded.privateStreamName, "~4")
    }

    /// A record that names another stream as its private one (a named stream, or nothing
    /// usable) is not followed: the connection gets a new private stream.
    func test_handedOverConnection_namingAnythingButAPrivateStream_getsNone() {
        for bad in ["alice-secret", "~", "~~x", "~a\u{1}b", ""] {
            let record = HandedOverConnection(id: 5, name: "recurd-conn-5", privateStream: bad, input: UnframedInput(bytes: [], discarding: false),
                                              usedPrivateStream: true, subscriptions: [])
            XCTAssertNil(record.privateStreamName, bad)
        }
    }
}
