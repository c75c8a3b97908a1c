import RecurEngine
import RecurServer
import XCTest

/// The engine knows no wire codes: the server maps each kind of engine failure to the code
/// docs/PROTOCOL.md gives it, and a client reads the engine's sentence under that code.
final class EngineErrorCodeTests: XCTestCase {
    func test_everyKindOfEngineFailure_hasItsDocumentedCode() {
        let expected: [EngineError.Kind: String] = [
            .unknownStream: "unknown_stream", .streamExists: "stream_exists", .busy: "busy", .badValue: "bad_value",
            .permissionDenied: "permission_denied", .quotaExceeded: "quota_exceeded", .shuttingDown: "shutting_down",
            .moved: "moved", .internal: "internal",
        ]
        XCTAssertEqual(Set(expected.keys), Set(EngineError.Kind.allCases))
        for kind in EngineError.Kind.allCases { XCTAssertEqual(ErrorCode(kind).rawValue, expected[kind], "\(kind)") }
    }

    func test_anEngineError_reachesTheClientAsItsCodeAndSentence() {
        let errors: [EngineError] = [.unknownStream("s"), .streamExists("t"), .busy("too many"), .badValue("k is -1"),
                                     .permissionDenied("not yours"), .quotaExceeded("2 streams"), .shuttingDown, .moved("group 7 is node b's"),
                                     .internal("disk")]
        for error in errors {
            let wire = ProtocolError(error)
            XCTAssertEqual(wire.code, ErrorCode(error.kind).rawValue)
            XCTAssertEqual(wire.message, error.description)
        }
    }
}
