import Foundation
import RecurCore
import RecurTestSupport
import XCTest

/// Feeds that ask for hidden units (`"units"`), the token id (`tid`) on every event, and how a
/// byte model's tokens read in JSON, all through the real recurd and `recur eval`.
final class UnitsTests: XCTestCase {
    private let text = "MENENIUS:\nWhat work's, my countrymen, in hand?"

    /// The values of `units` after each token of `text`, from the training code's forward pass.
    private func offline(_ model: URL, _ text: String, units: [Int]) throws -> [[Float]] {
        let loaded = try Model(contentsOf: model.path)
        let tokens = try loaded.vocabulary.encode(text)
        let trace = ActivationTrace(model: loaded, tokens: tokens)
        let H = loaded.config.hiddenSize
        let columns = units.map { trace.values(of: HiddenUnit(layer: $0 / H, vector: .h, index: $0 % H)) }
        return tokens.indices.map { t in columns.map { $0[t] } }
    }

    private func units(_ event: [String: Any]) -> [Float]? {
        (event["units"] as? [NSNumber])?.map { Float($0.doubleValue) }
    }

    func test_units_equalAnOfflineForwardPass_inTheOrderAsked_acrossLayersAndFeeds() throws {
        let daemon = try Daemon.start(self)
        let client = try daemon.connect()
        let asked = [300, 0, 255, 256, 511, 17]
        let split = text.index(text.startIndex, offsetBy: 13)
        var events: [[String: Any]] = []
        for piece in [String(text[..<split]), String(text[split...])] {
            let (got, reply) = try client.request(["op": "feed", "stream": "u", "text": piece, "k": 2, "units": asked])
            XCTAssertEqual(reply["done"] as? Bool, true, "\(reply)")
            events += got
        }
        let expected = try offline(Repository.shakespeareModel, text, units: asked)
        XCTAssertEqual(events.count, expected.count)
        var worst: Float = 0
        for (event, values) in zip(events, expected) {
            let got = try XCTUnwrap(units(event), "no units in \(event)")
            XCTAssertEqual(got.count, asked.count)
            for (a, b) in zip(got, values) { worst = max(worst, abs(a - b)) }
        }
        // The daemon steps with the inference kernels, the trace with the training code's.
        XCTAssertLessThan(worst, 1e-4, "largest difference from the offline trace")

        // "all": every layer's h in index order, the same values.
        let (all, _) = try client.request(["op": "feed", "stream": "all", "text": text, "k": 0, "units": "all"])
        let everything = try offline(Repository.shakespeareModel, text, units: Array(0..<512))
        XCTAssertEqual(all.count, everything.count)
        var worstAll: Float = 0
        for (event, values) in zip(all, everything) {
            let got = try XCTUnwrap(units(event))
            XCTAssertEqual(got.count, 512)
            for (a, b) in zip(got, values) { worstAll = max(worstAll, abs(a - b)) }
        }
        XCTAssertLessThan(worstAll, 1e-4)

        // Without "units", events carry none.
        let (plain, _) = try client.request(["op": "feed", "stream": "u", "text": "x"])
        XCTAssertNil(plain.first?["units"], "\(plain)")
    }

    func test_badUnits_areRefusedWithASentence_andFeedNothing() throws {
        let daemon = try Daemon.start(self)
        let client = try daemon.connect()
        let cases: [(Any, String)] = [
            ([3, 3], "unit 3 is asked twice (position 1)"),
            ([0, 512], "unit 512 at position 1 is outside 0...511 (the model has 2 layers of 256 hidden units)"),
            ([-1], "'units' item 0 must be a non-negative integer, not -1"),
            ([1.5], "'units' item 0 must be a non-negative integer, not 1.5"),
            (["3"], "'units' item 0 must be a non-negative integer, not a string"),
            ("some", "'units' must be an array of hidden-unit indices such as [3,17], or \"all\", not the string 'some'"),
            (7, "'units' must be an array of hidden-unit indices such as [3,17], or \"all\", not a number"),
            (Array(0..<1025), "'units' lists 1025 units; at most 1024 per event"),
            ([[1]], "'units' item 0 must be a non-negative integer, not an array"),
        ]
        for (units, message) in cases {
            let (events, reply) = try client.request(["op": "feed", "stream": "bad", "text": "To be", "units": units])
            XCTAssertEqual(events.count, 0)
            XCTAssertEqual(Protocol.errorCode(reply), "bad_value", "\(units): \(reply)")
            XCTAssertEqual((reply["error"] as? [String: Any])?["message"] as? String, message, "\(units)")
        }
        let (_, info) = try client.request(["op": "info", "stream": "bad"])
        XCTAssertEqual(Protocol.errorCode(info), "unknown_stream", "a refused feed created nothing: \(info)")
        // The daemon still serves.
        let (events, _) = try client.request(["op": "feed", "stream": "ok", "text": "To", "units": [1]])
        XCTAssertEqual(events.count, 2)
    }

    func test_unitsAll_beyondTheBound_isRefused() throws {
        // A model with more than 1024 units: a plain RNN, 2 layers of 600.
        let directory = try makeWorkDirectory(self)
        try "abcabc\nabc abc\n".write(to: directory.appendingPathComponent("c.txt"), atomically: true, encoding: .utf8)
        let train = try ChildProcess(Executables.recur, ["train", "c.txt", "--out", "big.safetensors", "--cell", "rnn", "--hidden", "600",
                                                         "--layers", "2", "--seq", "4", "--batch", "1", "--epochs", "1"],
                                     in: directory).wait(timeout: 120)
        XCTAssertEqual(train.status, 0, train.stderr)
        let daemon = try Daemon.start(self, model: directory.appendingPathComponent("big.safetensors"), in: directory)
        let client = try daemon.connect()
        let (_, reply) = try client.request(["op": "feed", "stream": "s", "text": "abc", "units": "all"])
        XCTAssertEqual(Protocol.errorCode(reply), "bad_value")
        XCTAssertEqual((reply["error"] as? [String: Any])?["message"] as? String,
                       "'units':\"all\" would send 1200 values per event (2 layers of 600); at most 1024: list the units wanted instead")
        let (events, _) = try client.request(["op": "feed", "stream": "s", "text": "abc", "units": [1199, 0]])
        XCTAssertEqual(events.count, 3)
        XCTAssertEqual((events.first?["units"] as? [Any])?.count, 2)
    }

    func test_byteModel_textBytesAreText_othersEscaped_tidsAndLogprobsAsRecurEval() throws {
        let daemon = try Daemon.start(self, model: Repository.logsModel)
        let text = "GET /a\tb\r\nnaïve \u{1B}[0m ok\n"
        let client = try daemon.connect()
        let (events, _) = try client.request(["op": "feed", "stream": "b", "text": text, "k": 1])
        let reference = try recurEvalPerToken(model: Repository.logsModel, text: text, in: daemon.directory)
        assertEventsMatchEval(events, reference, stream: "b")
        let tokens = events.compactMap { $0["token"] as? String }
        XCTAssertEqual(tokens.count, text.utf8.count)
        XCTAssertEqual(Array(tokens[6...8]), ["\t", "b", "\r"])
        XCTAssertEqual(tokens[9], "\n", "a newline is the JSON string \"\\n\"")
        XCTAssertEqual(Array(tokens[12...13]), ["\\xC3", "\\xAF"], "the bytes of ï are not text alone")
        XCTAssertEqual(tokens[17], "\\x1B", "ESC is a control byte")
        // Every text byte joined gives the text back.
        XCTAssertEqual(tokens.prefix(12).joined(), "GET /a\tb\r\nna")
        // tid is the byte itself for this vocabulary ("0".."255").
        XCTAssertEqual(events.compactMap { $0["tid"] as? Int }, text.utf8.map { Int($0) })
    }

    func test_charModel_eventsCarryTheVocabularyID_asRecurEval() throws {
        let daemon = try Daemon.start(self)
        let client = try daemon.connect()
        let (events, _) = try client.request(["op": "feed", "stream": "c", "text": text])
        assertEventsMatchEval(events, try recurEvalPerToken(model: Repository.shakespeareModel, text: text, in: daemon.directory), stream: "c")
        XCTAssertEqual(events.first?["tid"] as? Int, 25, "M is id 25 of the sample's vocabulary")
    }
}
