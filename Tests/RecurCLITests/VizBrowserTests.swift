import Foundation
import RecurTestSupport
import XCTest

/// The `recur viz` report in a real browser: headless Chromium (Debian's `chromium`, which
/// scripts/ensure-deps installs) loads it from a file, runs its script, and the test reads the
/// DOM it dumps and the console messages it logs.
final class VizBrowserTests: XCTestCase {
    private let text = "MENENIUS:\nWhat work's, my countrymen, in hand? where go you\nWith bats and clubs?\n"

    private let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples/shakespeare-lstm.safetensors").path

    /// What Chromium made of a page: its DOM after scripts ran, and each console message.
    private struct Loaded {
        var dom: String
        var console: [String]
    }

    private func chromium() throws -> URL {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent("chromium")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw FixtureError(message: "chromium is not installed; scripts/ensure-deps installs it (Debian package 'chromium')")
    }

    /// Loads `page` in headless Chromium with a private profile under `dir`.
    private func load(_ page: URL, in dir: URL) throws -> Loaded {
        let args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--user-data-dir=\(dir.appendingPathComponent("profile").path)",
                    "--enable-logging=stderr", "--v=0", "--dump-dom", page.absoluteString]
        let result = try ChildProcess(try chromium(), args, in: dir).wait(timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr)
        // Chromium logs each console message as "...:INFO:CONSOLE:<line>] "message", source: ...".
        return Loaded(dom: result.stdout, console: result.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init))
    }

    private func captures(_ pattern: String, in text: String) throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map {
            String(text[Range($0.range(at: 1), in: text)!])
        }
    }

    func test_consoleCheck_catchesAScriptError() throws {
        let dir = try makeWorkDirectory(self)
        let page = dir.appendingPathComponent("broken.html")
        try "<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>".write(to: page, atomically: true, encoding: .utf8)
        let loaded = try load(page, in: dir)
        XCTAssertTrue(loaded.console.contains { $0.contains("undefinedFunction") }, "console: \(loaded.console)")
    }

    func test_report_loadsWithoutConsoleMessages_andItsDOMCarriesEvalsLogProbs() throws {
        let dir = try makeWorkDirectory(self)
        try text.write(to: dir.appendingPathComponent("t.txt"), atomically: true, encoding: .utf8)
        let viz = try Recur.run(["viz", sample, "t.txt", "--out", "report.html"], in: dir)
        XCTAssertEqual(viz.status, 0, viz.stderr)
        let eval = try Recur.run(["eval", sample, "t.txt", "--json", "--per-token"], in: dir)
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let expected = try eval.lines.dropLast().map { try XCTUnwrap(jsonObject($0)["logprob"] as? Double) }

        let loaded = try load(dir.appendingPathComponent("report.html"), in: dir)
        XCTAssertEqual(loaded.console, [], "console messages")
        let dom = loaded.dom
        // The script ran to its end: it listens for hover on every scored token.
        XCTAssertEqual(try captures(#"<body[^>]*data-hover-tokens="(\d+)""#, in: dom), ["\(text.count - 1)"])

        let surprisal = try XCTUnwrap(captures(#"<div id="surprisal" class="text">(.*?)</div>"#, in: dom).first, "no #surprisal in the DOM")
        let logProbs = try captures(#"data-logprob="([^"]*)""#, in: surprisal).compactMap(Double.init)
        XCTAssertEqual(logProbs.count, expected.count)
        let worst = zip(logProbs, expected).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, 1e-5, "max difference from recur eval \(worst)")
        XCTAssertEqual(try captures(#"<span class="(t[^"]*)""#, in: surprisal).count, text.count)

        // Each feature heat map that found a unit has one cell per token.
        let heats = try captures(#"<div class="text heat"(.*?)</div>"#, in: dom)
        XCTAssertFalse(heats.isEmpty, "no heat map in the DOM")
        for heat in heats { XCTAssertEqual(try captures(#"(<span data-value=)"#, in: heat).count, text.count) }
        // The charts parsed as SVG: two saturation scatters and the memory-reach curve.
        XCTAssertEqual(try captures(#"(<svg class="chart")"#, in: dom).count, 3)
        XCTAssertEqual(try captures(#"(<polyline id="reach")"#, in: dom).count, 1)
    }
}
