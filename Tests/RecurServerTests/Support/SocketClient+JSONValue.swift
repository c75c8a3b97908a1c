import RecurCore
import RecurTestSupport
import XCTest

/// The shared test client read through `JSONValue`, the JSON the server itself parses and
/// writes (these tests check the exact JSON on the wire, numbers as written).
extension SocketClient {
    /// The next line parsed as JSON; fails the test when there is none or it is not JSON.
    func readJSON(timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        guard let text = try readLine(timeout: timeout) else {
            XCTFail("the server closed the connection instead of replying", file: file, line: line)
            throw TestFailure("connection closed")
        }
        do {
            return try JSONValue.parse(Array(text.utf8))
        } catch {
            XCTFail("the reply is not JSON: \(text)", file: file, line: line)
            throw error
        }
    }

    /// Sends `request` and returns the next line as JSON.
    func request(_ request: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        try send(request)
        return try readJSON(file: file, line: line)
    }

    /// Reads lines until one satisfies `isLast`, returning all of them (the last included).
    func readUntil(timeout: Double = 30, _ isLast: (JSONValue) -> Bool) throws -> [JSONValue] {
        var lines: [JSONValue] = []
        while true {
            let value = try readJSON(timeout: timeout)
            lines.append(value)
            if isLast(value) { return lines }
        }
    }

    /// Feeds `text` and returns (events, final reply).
    func feed(_ text: String, stream: String? = nil, k: Int? = nil, flush: Bool = false, id: String? = nil) throws -> (events: [JSONValue], reply: JSONValue) {
        var members = ["\"op\":\"feed\"", "\"text\":\(JSONValue.string(text).rendered)"]
        if let stream { members.append("\"stream\":\(JSONValue.string(stream).rendered)") }
        if let k { members.append("\"k\":\(k)") }
        if flush { members.append("\"flush\":true") }
        if let id { members.append("\"id\":\(JSONValue.string(id).rendered)") }
        try send("{" + members.joined(separator: ",") + "}")
        let lines = try readUntil { $0["done"] != nil || $0["error"] != nil }
        return (Array(lines.dropLast()), lines.last!)
    }
}
