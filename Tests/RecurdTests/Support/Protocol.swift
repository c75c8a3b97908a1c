import Foundation
import RecurTestSupport
import XCTest

/// What the tests know of docs/PROTOCOL.md's shapes.
enum Protocol {
    /// A per-token event: {"stream","offset","token","logprob","next"} (plus the request's id).
    static func isTokenEvent(_ message: [String: Any]) -> Bool {
        message["token"] != nil && message["offset"] != nil && message["next"] != nil
    }

    /// The error code of an error reply, or nil.
    static func errorCode(_ message: [String: Any]) -> String? {
        (message["error"] as? [String: Any])?["code"] as? String
    }

    /// An event's logprob as the Float the daemon computed (nil for a stream's first token).
    static func logprob(_ event: [String: Any]) -> Float? {
        (event["logprob"] as? NSNumber).map { Float($0.doubleValue) }
    }
}

/// One scored token as `recur eval --per-token --json` prints it.
struct EvalToken: Equatable {
    var offset: Int
    var token: String
    var logprob: Float
    /// The vocabulary id (`"tid"`), which events carry too.
    var tid: Int = -1
}

/// `recur eval MODEL TEXT --per-token --json` on `text`: the reference every stream must match.
func recurEvalPerToken(model: URL, text: String, in directory: URL, arguments: [String] = []) throws -> [EvalToken] {
    let file = directory.appendingPathComponent("eval-\(UUID().uuidString.prefix(8)).txt")
    try Data(text.utf8).write(to: file)
    let result = try ChildProcess(Executables.recur, ["eval", model.path, file.path, "--per-token", "--json"] + arguments,
                                  in: directory, stdin: Data()).wait(timeout: 300)  // debug builds: ~5 ms a token, more under load
    guard result.status == 0 else { throw TestFailure("recur eval failed (\(result.status)): \(result.stderr)") }
    var tokens: [EvalToken] = []
    for line in result.lines {
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        guard let offset = object["offset"] as? Int else { continue }  // the summary
        tokens.append(EvalToken(offset: offset, token: object["token"] as! String,
                                logprob: Float((object["logprob"] as! NSNumber).doubleValue), tid: object["tid"] as! Int))
    }
    return tokens
}

extension XCTestCase {
    /// Asserts that a stream's events are exactly what `recur eval --per-token` computes: offsets
    /// 1...N in order, the same tokens, the first without a logprob and every later logprob
    /// bit-for-bit equal. On failure, prints the largest difference.
    func assertEventsMatchEval(_ events: [[String: Any]], _ reference: [EvalToken], stream: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(events.count, reference.count + 1, "stream \(stream): event count (eval scores all but the first token)", file: file, line: line)
        var maxDifference: Float = 0
        var mismatches = 0
        for (i, event) in events.enumerated() {
            XCTAssertEqual(event["stream"] as? String, stream, file: file, line: line)
            XCTAssertEqual(event["offset"] as? Int, i + 1, "stream \(stream): offsets count from 1 in order", file: file, line: line)
            if i == 0 {
                XCTAssertTrue(event["logprob"] is NSNull, "stream \(stream): the first token has no prediction", file: file, line: line)
                continue
            }
            guard i - 1 < reference.count else { break }
            let expected = reference[i - 1]
            if (event["token"] as? String) != expected.token { mismatches += 1 }
            if (event["tid"] as? Int) != expected.tid { mismatches += 1 }
            guard let logprob = Protocol.logprob(event) else { mismatches += 1; continue }
            maxDifference = max(maxDifference, abs(logprob - expected.logprob))
        }
        XCTAssertEqual(mismatches, 0, "stream \(stream): tokens or their ids (tid) differ from recur eval's", file: file, line: line)
        XCTAssertEqual(maxDifference, 0, "stream \(stream): max |logprob - recur eval's| = \(maxDifference)", file: file, line: line)
    }
}

/// The tests' seeded generator (SplitMix64, from RecurTestSupport) under the name these tests
/// use; it shadows RecurCore's `SeededGenerator` (xoshiro256**) in this module.
typealias SeededGenerator = TestRNG

/// `text` cut at random character boundaries into pieces of 1...maxLength characters.
func randomChunks(_ text: String, maxLength: Int, using generator: inout SeededGenerator) -> [String] {
    var chunks: [String] = []
    var rest = Substring(text)
    while !rest.isEmpty {
        let n = Int.random(in: 1...maxLength, using: &generator)
        chunks.append(String(rest.prefix(n)))
        rest = rest.dropFirst(n)
    }
    return chunks
}
