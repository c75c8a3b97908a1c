import Foundation
import RecurCore
import XCTest
import RecurTestSupport

/// docs/MODEL-FORMAT.md's Python, both directions, for every tokenizer. scripts/make_doc_fixtures.py
/// ran the doc's code blocks once with PyTorch and recorded what they did in
/// Tests/RecurCoreTests/Fixtures/model-format-doc: the models the doc's export wrote, and
/// PyTorch's numbers on models recur wrote. These tests check that the doc still holds exactly
/// those blocks, that recur loads what they exported, and that recurd's events equal PyTorch's
/// numbers on all of them, so the tests need no PyTorch.
final class ModelFormatDocTests: XCTestCase {
    struct Event: Decodable {
        var token: String
        var logprob: Double?
        var next: [[Next]]

        /// One `[token, p]` pair of the top predictions.
        enum Next: Decodable {
            case token(String), p(Double)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let s = try? c.decode(String.self) { self = .token(s) } else { self = .p(try c.decode(Double.self)) }
            }
        }
    }

    struct Case: Decodable {
        var direction: String
        var tokenizer: String
        var model: String
        var printed: String
        var text: String
        var ids: [Int]
        var events: [Event]
        var cell: String?
        var hidden_size: Int?
        var embedding_size: Int?
        var vocab_size: Int?
    }

    struct Manifest: Decodable {
        var python_blocks: [String]
        var cases: [Case]
    }

    static let fixtures = Repository.root.appendingPathComponent("Tests/RecurCoreTests/Fixtures/model-format-doc")
    static let doc = Repository.root.appendingPathComponent("docs/MODEL-FORMAT.md")

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: fixtures.appendingPathComponent("cases.json")))
    }

    /// The ```python fenced blocks of a markdown file, as scripts/make_doc_fixtures.py reads them.
    static func pythonBlocks(of url: URL) throws -> [String] {
        var blocks: [String] = []
        var current: [String]?
        for line in try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n") {
            if current == nil {
                if line == "```python" { current = [] }
            } else if line == "```" {
                blocks.append(current!.joined(separator: "\n") + "\n")
                current = nil
            } else {
                current!.append(line)
            }
        }
        return blocks
    }

    func test_docsPythonBlocks_areExactlyTheOnesTheFixturesWereMadeWith() throws {
        let recorded = try Self.manifest().python_blocks
        let current = try Self.pythonBlocks(of: Self.doc)
        XCTAssertEqual(current.count, recorded.count, "docs/MODEL-FORMAT.md's python blocks changed in number; re-run scripts/make_doc_fixtures.py")
        for (i, (now, then)) in zip(current, recorded).enumerated() where now != then {
            let nowLines = now.components(separatedBy: "\n"), thenLines = then.components(separatedBy: "\n")
            let first = (0..<min(nowLines.count, thenLines.count)).first { nowLines[$0] != thenLines[$0] } ?? min(nowLines.count, thenLines.count)
            XCTFail("""
                docs/MODEL-FORMAT.md python block \(i + 1) differs from the one scripts/make_doc_fixtures.py ran, \
                from its line \(first + 1): now \(first < nowLines.count ? nowLines[first] : "(end)"), \
                then \(first < thenLines.count ? thenLines[first] : "(end)"). Re-run the script (its docstring says how).
                """)
        }
    }

    func test_everyTokenizer_bothDirections_recurdEqualsPyTorch() throws {
        let cases = try Self.manifest().cases
        XCTAssertEqual(Set(cases.map { "\($0.direction) \($0.tokenizer)" }),
                       Set(["recur-to-pytorch", "pytorch-to-recur"].flatMap { d in ["char", "byte", "word"].map { "\(d) \($0)" } }))
        let directory = try makeWorkDirectory(self)
        for c in cases {
            let what = "\(c.direction) \(c.tokenizer) (\(c.model))"
            let path = Self.fixtures.appendingPathComponent(c.model)
            let model = try Model(contentsOf: path.path)
            XCTAssertEqual(model.vocabulary.kind.rawValue, c.tokenizer, what)
            if let cell = c.cell {
                XCTAssertEqual(model.config.cell.rawValue, cell, what)
                XCTAssertEqual(model.config.hiddenSize, c.hidden_size, what)
                XCTAssertEqual(model.config.embeddingSize, c.embedding_size, what)
                XCTAssertEqual(model.config.vocabularySize, c.vocab_size, what)
            }
            // The ids PyTorch's encode gave are recur's tokenizer's.
            XCTAssertEqual(try Tokenizer(model.vocabulary).encode(c.text).map(Int.init), c.ids, "\(what): token ids")

            // recurd on the same text: every event's token, logprob and top-3 against PyTorch's.
            let result = try runRecurd(["--model", path.path, "--stdin", "--top-k", "3"], in: directory, stdin: Data(c.text.utf8))
            XCTAssertEqual(result.status, 0, "\(what): \(result.stderr)")
            let events = result.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            XCTAssertEqual(events.count, c.events.count, "\(what): events")
            for (i, (actual, expected)) in zip(events, c.events).enumerated() {
                XCTAssertEqual(actual["token"] as? String, expected.token, "\(what): token \(i + 1)")
                if let lp = expected.logprob {
                    let got = (actual["logprob"] as? NSNumber)?.doubleValue ?? .nan
                    XCTAssertEqual(got, lp, accuracy: 2e-5, "\(what): logprob of token \(i + 1)")
                } else {
                    XCTAssertTrue(actual["logprob"] is NSNull, "\(what): the first token has no logprob")
                }
                let next = actual["next"] as? [[String: Any]] ?? []
                XCTAssertEqual(next.count, expected.next.count, "\(what): top-k after token \(i + 1)")
                for (n, pair) in zip(next, expected.next) {
                    guard case .token(let token) = pair[0], case .p(let p) = pair[1] else { return XCTFail("bad fixture") }
                    XCTAssertEqual(n["token"] as? String, token, "\(what): a top token after token \(i + 1)")
                    XCTAssertEqual((n["p"] as? NSNumber)?.doubleValue ?? .nan, p, accuracy: 1e-5, "\(what): p of \(token) after token \(i + 1)")
                }
            }
        }
    }

    /// What the issue hit: a byte vocabulary in string order (`sorted()`) is refused, and the
    /// message says what order a byte vocabulary has.
    func test_byteVocabularyInStringOrder_isRefusedWithTheRule() throws {
        let directory = try makeWorkDirectory(self)
        let source = try Data(contentsOf: Self.fixtures.appendingPathComponent("pytorch-byte.safetensors"))
        let headerLength = Int(source.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        var header = try XCTUnwrap(JSONSerialization.jsonObject(with: source.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        var metadata = try XCTUnwrap(header["__metadata__"] as? [String: String])
        let stringOrder = (0..<256).map(String.init).sorted()
        metadata["vocabulary"] = String(decoding: try JSONSerialization.data(withJSONObject: stringOrder), as: UTF8.self)
        header["__metadata__"] = metadata
        var json = try JSONSerialization.data(withJSONObject: header)
        while json.count % 8 != 0 { json.append(0x20) }
        var file = Data((0..<8).map { UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64($0))) })
        file.append(json)
        file.append(source.subdata(in: (8 + headerLength)..<source.count))
        let path = directory.appendingPathComponent("string-order.safetensors")
        try file.write(to: path)

        let result = try runRecur(["inspect", path.path], in: directory)
        assertCleanError(result, program: "recur", mentions: ["byte token 2 is '10' instead of \"2\"", "numeric order"])
    }
}
