import Foundation
import RecurTestSupport
import XCTest

/// The live view in a real browser: headless Chromium (Debian's `chromium`, which
/// scripts/ensure-deps installs) opens the page of a real recurd with the admin token, watches
/// a stream that a test client feeds over the Unix socket, and stops after the fed tokens
/// (`until=N`, which closes the event stream so that Chromium's virtual time runs out and it
/// dumps the DOM). The test reads the DOM and the console.
final class LiveViewBrowserTests: XCTestCase {
    private let first = "MENENIUS:"
    private let rest = "\nWhat work's, my countrymen, in hand?\nWhere go you with bats & clubs?\n"

    private func chromium() throws -> URL {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent("chromium")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw TestFailure("chromium is not installed; scripts/ensure-deps installs it (Debian package 'chromium')")
    }

    private func captures(_ pattern: String, in text: String, group: Int = 1) throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map {
            String(text[Range($0.range(at: group), in: text)!])
        }
    }

    private func unescaped(_ html: String) -> String {
        html.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }

    func test_liveView_showsTheFedText_withRecurEvalsLogprobs_aHeatMapCellPerToken_andNoConsoleMessages() throws {
        let live = try LiveDaemon.start(self)
        let client = try live.daemon.connect()
        let (created, _) = try client.request(["op": "feed", "stream": "demo", "text": first])
        XCTAssertEqual(created.count, first.count)

        let dir = live.daemon.directory
        let url = "http://\(live.address)/?token=\(live.adminToken)&stream=demo&until=\(rest.count)"
        let browser = try ChildProcess(try chromium(), [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--user-data-dir=\(dir.appendingPathComponent("profile").path)", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=2000", "--dump-dom", url,
        ], in: dir)
        addTeardownBlock { browser.signal(SIGKILL) }
        // The page is live once its event stream is attached; only then is the rest fed.
        try live.waitForWatchers(1, timeout: 30)
        let (fed, reply) = try client.request(["op": "feed", "stream": "demo", "text": rest, "k": 0])
        XCTAssertEqual(reply["done"] as? Bool, true)
        XCTAssertEqual(fed.count, rest.count)
        let result = try browser.wait(timeout: 60)
        XCTAssertEqual(result.status, 0, result.stderr)
        let console = result.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        XCTAssertEqual(console, [], "console messages")
        let dom = result.stdout

        XCTAssertEqual(try captures(#"<body[^>]*data-state="(\w+)""#, in: dom), ["stopped"], "the page reached its live state and stopped after the fed tokens")
        let text = try XCTUnwrap(captures(#"<div id="text" class="text"[^>]*>(.*?)</div>"#, in: dom).first, "no #text in the DOM")
        let spans = try captures(#"<span class="tok"([^>]*)>([^<]*)</span>"#, in: text, group: 1)
        let pieces = try captures(#"<span class="tok"([^>]*)>([^<]*)</span>"#, in: text, group: 2)
        XCTAssertEqual(pieces.map(unescaped).joined(), rest, "the streamed text, token by token")

        let everything = try recurEvalPerToken(model: Repository.shakespeareModel, text: first + rest, in: dir)
        let expected = everything.filter { $0.offset > first.count }
        XCTAssertEqual(spans.count, expected.count)
        for (attributes, token) in zip(spans, expected) {
            XCTAssertEqual(try captures(#"data-offset="(\d+)""#, in: attributes).first, "\(token.offset)")
            XCTAssertEqual(try captures(#"data-tid="(\d+)""#, in: attributes).first, "\(token.tid)")
            let logprob = try XCTUnwrap(captures(#"data-logprob="([^"]*)""#, in: attributes).first.flatMap { Float($0) })
            XCTAssertEqual(logprob, token.logprob, "offset \(token.offset)")
            XCTAssertTrue(attributes.contains("background"), "coloured: \(attributes)")
            XCTAssertTrue(attributes.contains("title=\""), "top-k on hover: \(attributes)")
        }

        // The heat map: the 4 units that varied most, each a row with one cell per token.
        let rows = try captures(#"<div class="text heat" data-unit="(\d+)">"#, in: dom)
        XCTAssertEqual(rows.count, 4, "heat map rows")
        let cells = try captures(#"<div class="text heat" data-unit="\d+">(.*?)</div>"#, in: dom)
        for row in cells { XCTAssertEqual(try captures(#"(<span data-value=)"#, in: row).count, rest.count) }
        // The rolling chart has a point per full window of scored tokens, and its threshold line.
        XCTAssertEqual(try captures(#"<svg id="chart"[^>]*data-points="(\d+)""#, in: dom), ["\(rest.count - 8 + 1)"])
        let chart = try XCTUnwrap(captures(#"<svg id="chart"[^>]*>(.*?)</svg>"#, in: dom).first)
        XCTAssertEqual(try captures(#"(<line id="threshold-line")"#, in: chart).count, 1)
        XCTAssertEqual(try captures(#"<li data-stream="([^"]*)""#, in: dom), ["demo"], "the stream list")
    }
}
