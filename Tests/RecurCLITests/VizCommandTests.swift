import Foundation
import XCTest

/// `recur viz` through the real binary on the committed Shakespeare LSTM: a self-contained
/// report whose numbers agree with `recur eval`.
final class VizCommandTests: XCTestCase {
    private let text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"

    private let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples/shakespeare-lstm.safetensors").path

    private func directory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("recur-viz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try text.write(to: dir.appendingPathComponent("t.txt"), atomically: true, encoding: .utf8)
        return dir
    }

    /// Runs `recur viz` on t.txt and returns the report's text.
    private func report(in dir: URL, _ extra: [String] = []) throws -> String {
        let result = try Recur.run(["viz", sample, "t.txt", "--out", "report.html"] + extra, in: dir)
        XCTAssertEqual(result.status, 0, result.stderr)
        return try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
    }

    /// Every match of `pattern`'s first capture group in `text`.
    private func captures(_ pattern: String, in text: String) throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map {
            String(text[Range($0.range(at: 1), in: text)!])
        }
    }

    private func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    func test_viz_spansCarryTheLogProbsOfEvalPerToken_andTheTextRoundTrips() throws {
        let dir = try directory()
        let html = try report(in: dir)
        let eval = try Recur.run(["eval", sample, "t.txt", "--json", "--per-token"], in: dir)
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let expected = try eval.lines.dropLast().map { try XCTUnwrap(jsonObject($0)["logprob"] as? Double) }
        XCTAssertEqual(expected.count, text.count - 1)

        let surprisal = try XCTUnwrap(captures(#"<div id="surprisal" class="text">(.*?)</div>"#, in: html).first)
        let logProbs = try captures(#"data-logprob="([^"]*)""#, in: surprisal).map { try XCTUnwrap(Double($0), $0) }
        XCTAssertEqual(logProbs.count, expected.count)
        let worst = zip(logProbs, expected).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, 1e-5, "max difference from recur eval \(worst)")
        let pieces = try captures(#"<span class="t[^"]*"[^>]*>(.*?)</span>"#, in: surprisal).map(unescape)
        XCTAssertEqual(pieces.joined(), text)
        // Top-k on hover: 5 guesses per scored token, probabilities in (0, 1], most probable first.
        for top in try captures(#"data-top="([^"]*)""#, in: surprisal) {
            let guesses = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(unescape(top).utf8)) as? [[Any]])
            XCTAssertEqual(guesses.count, 5)
            let p = guesses.compactMap { $0[1] as? Double }
            XCTAssertEqual(p, p.sorted(by: >))
            XCTAssertTrue(p.allSatisfy { $0 > 0 && $0 <= 1 }, "\(p)")
        }
    }

    func test_viz_isSelfContained_andHasEverySection() throws {
        let html = try report(in: try directory())
        XCTAssertFalse(html.contains("http"), "a URL in the report")
        XCTAssertTrue(try captures(#"(?:src|href)\s*=\s*"([^"]*)""#, in: html).isEmpty, "the report links or loads something")
        XCTAssertFalse(html.contains("//"), "a protocol-relative or absolute URL in the report")
        for id in ["surprisal", "features", "saturation", "memory-reach"] {
            XCTAssertTrue(html.contains("id=\"\(id)\""), "no #\(id)")
        }
        XCTAssertFalse(html.contains("id=\"metrics\""), "loss curves without --metrics")

        // The line-position and word-start cells: one heat-map span per token and |r| in (0, 1].
        let heats = try captures(#"<div class="text heat"(.*?)</div>"#, in: html)
        XCTAssertEqual(heats.count, 2, "the text has no quotes or brackets, so two features vary")
        for heat in heats {
            XCTAssertEqual(try captures(#"(<span data-value=)"#, in: heat).count, text.count)
            let r = try XCTUnwrap(Double(try XCTUnwrap(captures(#"data-r="([^"]*)""#, in: heat).first)))
            XCTAssertTrue(abs(r) > 0.3 && abs(r) <= 1, "r = \(r)")
            XCTAssertTrue(try ["h", "c"].contains(XCTUnwrap(captures(#"data-vector="([^"]*)""#, in: heat).first)))
        }
        XCTAssertEqual(try captures(#"(Constant over this text)"#, in: html).count, 2)

        // Gate saturation: 2 layers × input, forget, output gates, 256 dots each.
        for layer in 1...2 {
            for gate in ["input", "forget", "output"] {
                let dots = try XCTUnwrap(captures(#"<g id="gate-l\#(layer)-\#(gate)"[^>]*>(.*?)</g>"#, in: html).first, "layer \(layer) \(gate)")
                XCTAssertEqual(try captures(#"(<circle)"#, in: dots).count, 256)
            }
        }
        // Memory reach: 64 positive gradient norms, the nearest input mattering more than the farthest.
        let norms = try XCTUnwrap(captures(#"data-norms="([^"]*)""#, in: html).first).split(separator: " ").compactMap { Double($0) }
        XCTAssertEqual(norms.count, 64)
        XCTAssertTrue(norms.allSatisfy { $0 > 0 }, "\(norms)")
        XCTAssertGreaterThan(norms[0], norms[63])
    }

    func test_viz_withMetrics_drawsTheTrainingAndValidationCurves() throws {
        let dir = try directory()
        try """
            {"elapsed_s":1,"tokens":1000,"tokens_per_s":1000,"train_loss":3.1,"epoch":0.1,"lr":0.002}
            {"elapsed_s":2,"tokens":2000,"tokens_per_s":1000,"train_loss":2.5,"val_loss":2.6,"epoch":0.2,"lr":0.002}
            {"elapsed_s":3,"tokens":3000,"tokens_per_s":1000,"train_loss":null,"epoch":0.3,"lr":0.002}
            {"elapsed_s":4,"tokens":4000,"tokens_per_s":1000,"train_loss":2.0,"val_loss":2.2,"epoch":0.4,"lr":0.002}

            """.write(to: dir.appendingPathComponent("m.jsonl"), atomically: true, encoding: .utf8)
        let html = try report(in: dir, ["--metrics", "m.jsonl"])
        let metrics = try XCTUnwrap(captures(#"<section id="metrics">(.*?)</section>"#, in: html).first)
        XCTAssertEqual(try captures(#"id="train-loss"[^>]*data-points="(\d+)""#, in: metrics), ["3"])
        XCTAssertEqual(try captures(#"id="val-loss"[^>]*data-points="(\d+)""#, in: metrics), ["2"])
    }

    func test_viz_badInputs_giveOneLineErrors() throws {
        let dir = try directory()
        assertCleanError(try Recur.run(["viz", "missing.safetensors", "t.txt", "--out", "r.html"], in: dir),
                         mentions: ["missing.safetensors"])
        try Data("not a model".utf8).write(to: dir.appendingPathComponent("bad.safetensors"))
        assertCleanError(try Recur.run(["viz", "bad.safetensors", "t.txt", "--out", "r.html"], in: dir),
                         mentions: ["invalid model file 'bad.safetensors'"])
        assertCleanError(try Recur.run(["viz", sample, "missing.txt", "--out", "r.html"], in: dir),
                         mentions: ["missing.txt"])
        try "".write(to: dir.appendingPathComponent("empty.txt"), atomically: true, encoding: .utf8)
        assertCleanError(try Recur.run(["viz", sample, "empty.txt", "--out", "r.html"], in: dir),
                         mentions: ["'empty.txt' has 0 tokens"])
        try "{é}".write(to: dir.appendingPathComponent("odd.txt"), atomically: true, encoding: .utf8)
        assertCleanError(try Recur.run(["viz", sample, "odd.txt", "--out", "r.html"], in: dir),
                         mentions: ["cannot tokenize 'odd.txt'"])
        try "{\"tokens\":1,\"train_loss\":2}\nnot json\n".write(to: dir.appendingPathComponent("m.jsonl"), atomically: true, encoding: .utf8)
        assertCleanError(try Recur.run(["viz", sample, "t.txt", "--out", "r.html", "--metrics", "m.jsonl"], in: dir),
                         mentions: ["invalid metrics file 'm.jsonl', line 2"])
        assertCleanError(try Recur.run(["viz", sample, "t.txt", "--out", "no/such/dir/r.html"], in: dir),
                         mentions: ["no/such/dir"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("r.html").path))
    }
}

/// `--metrics` on the log a real `recur train` run wrote.
final class VizTrainedMetricsTests: XCTestCase {
    func test_viz_withTheMetricsLogOfATrainingRun_drawsOnePointPerReport() throws {
        let fixture = try TrainedFixture.get()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("recur-viz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try fixture.copy(to: dir)
        try "the lazy dog sat on the mat\n".write(to: dir.appendingPathComponent("t.txt"), atomically: true, encoding: .utf8)
        let reports = try jsonLines(dir.appendingPathComponent("model.safetensors.metrics.jsonl"))
        let trainPoints = reports.filter { $0["train_loss"] is Double }.count
        let valPoints = reports.filter { $0["val_loss"] is Double }.count
        XCTAssertGreaterThan(trainPoints, 1)
        XCTAssertGreaterThan(valPoints, 0)

        let result = try Recur.run(["viz", "model.safetensors", "t.txt", "--out", "r.html",
                                    "--metrics", "model.safetensors.metrics.jsonl"], in: dir)
        XCTAssertEqual(result.status, 0, result.stderr)
        let html = try String(contentsOf: dir.appendingPathComponent("r.html"), encoding: .utf8)
        func points(_ id: String) throws -> [String] {
            let regex = try NSRegularExpression(pattern: #"<polyline id="\#(id)"[^>]*data-points="(\d+)""#)
            return regex.matches(in: html, range: NSRange(html.startIndex..., in: html)).map {
                String(html[Range($0.range(at: 1), in: html)!])
            }
        }
        XCTAssertEqual(try points("train-loss"), ["\(trainPoints)"])
        XCTAssertEqual(try points("val-loss"), ["\(valPoints)"])
    }
}

/// `recur viz` on GRU and vanilla-RNN models trained for a moment by `recur train`, one-hot
/// and embedded: the gate section follows the cell.
final class VizCellKindTests: XCTestCase {
    private func report(cell: String, embedding: Int) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("recur-viz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try makeCorpus(sentences: 200).write(to: dir.appendingPathComponent("corpus.txt"), atomically: true, encoding: .utf8)
        let train = try Recur.run(["train", "corpus.txt", "--out", "m.safetensors", "--cell", cell, "--hidden", "8",
                                   "--embedding", "\(embedding)", "--seq", "16", "--batch", "4", "--epochs", "1"], in: dir)
        XCTAssertEqual(train.status, 0, train.stderr)
        try "the dog sat on the mat\nthe bird sings\n".write(to: dir.appendingPathComponent("t.txt"), atomically: true, encoding: .utf8)
        let viz = try Recur.run(["viz", "m.safetensors", "t.txt", "--out", "r.html"], in: dir)
        XCTAssertEqual(viz.status, 0, viz.stderr)
        return try String(contentsOf: dir.appendingPathComponent("r.html"), encoding: .utf8)
    }

    func test_gru_oneHot_showsResetAndUpdateGates_andTheOneHotReach() throws {
        let html = try report(cell: "gru", embedding: 0)
        XCTAssertTrue(html.contains("<g id=\"gate-l1-reset\""), "no reset gate")
        XCTAssertTrue(html.contains("<g id=\"gate-l1-update\""), "no update gate")
        XCTAssertFalse(html.contains("gate-l1-forget"))
        XCTAssertTrue(html.contains("its one-hot vector"))
        XCTAssertTrue(html.contains("<polyline id=\"reach\""))
    }

    func test_rnn_saysItHasNoGates() throws {
        let html = try report(cell: "rnn", embedding: 4)
        XCTAssertTrue(html.contains("A vanilla RNN has no gates."))
        XCTAssertFalse(html.contains("<g id=\"gate-"))
        XCTAssertTrue(html.contains("data-vector=\"h\""), "the feature cells are h units")
        XCTAssertFalse(html.contains("data-vector=\"c\""), "a c unit in an RNN")
    }
}
