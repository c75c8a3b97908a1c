import Foundation
import RecurTestSupport
import XCTest

/// `recurd --http`: GET /metrics through the real daemon moves exactly as the load it was given,
/// passes `promtool check metrics`, and answers nothing else.
final class MetricsTests: XCTestCase {
    /// Starts recurd (byte model: a token per byte) with `--http ADDRESS` and returns it with the
    /// address it logged as bound.
    private func startWithHTTP(_ http: String, arguments: [String] = []) throws -> (Daemon, String) {
        let daemon = try Daemon.start(self, model: Repository.logsModel, arguments: ["--http", http] + arguments)
        return (daemon, try daemon.child.waitForHTTPAddress())
    }

    private func scrape(_ address: String) throws -> String {
        let response = try httpGet(address, "/metrics")
        XCTAssertEqual(response.status, 200, response.body)
        XCTAssertEqual(response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        return response.body
    }

    func test_metrics_countExactlyWhatWasFed() throws {
        let (daemon, address) = try startWithHTTP("127.0.0.1:0")
        let before = try scrape(address)
        XCTAssertEqual(sample(before, "recurd_tokens_absorbed_total"), 0, before)
        XCTAssertEqual(sample(before, "recurd_feeds_total"), 0, before)

        let client = try daemon.connect()
        let texts = ["GET /index.html 200\n", "POST /login 403\n", "é ü\n", "kernel: eth0 link up\n"]
        var tokens = 0
        for (i, text) in texts.enumerated() {
            let (events, reply) = try client.request(["op": "feed", "stream": "s\(i % 2)", "text": text])
            XCTAssertEqual(reply["done"] as? Bool, true, "\(reply)")
            XCTAssertEqual(reply["tokens"] as? Int, text.utf8.count, "a byte model absorbs a token per byte")
            XCTAssertEqual(events.count, text.utf8.count)
            tokens += text.utf8.count
        }
        let (_, unknown) = try client.request(["op": "frobnicate"])
        XCTAssertEqual(Protocol.errorCode(unknown), "unknown_op")
        let (_, missing) = try client.request(["op": "feed", "stream": "s0"])
        XCTAssertNotNil(Protocol.errorCode(missing))
        try client.send(line: "{not json")
        XCTAssertEqual(Protocol.errorCode(try client.readObject()), "bad_json")

        let after = try scrape(address)
        XCTAssertEqual(sample(after, "recurd_tokens_absorbed_total"), Double(tokens), after)
        XCTAssertEqual(sample(after, "recurd_feeds_total"), Double(texts.count), "a line that is no valid feed request is an error, not a feed: \(after)")
        XCTAssertEqual(sample(after, "recurd_errors_total", "code=\"unknown_op\""), 1, after)
        XCTAssertEqual(sample(after, "recurd_errors_total", "code=\"bad_json\""), 1, after)
        XCTAssertEqual(sample(after, "recurd_errors_total", "code=\"\(Protocol.errorCode(missing)!)\""), 1, after)
        XCTAssertEqual(sample(after, "recurd_feed_latency_seconds_count"), Double(texts.count), after)
        // Each stream's first token has no prediction before it, so no surprisal (2 streams).
        XCTAssertEqual(sample(after, "recurd_token_surprisal_count"), Double(tokens - 2), after)
        XCTAssertEqual(sample(after, "recurd_engine_step_batch_size_sum"), Double(tokens), "one row per absorbed token: \(after)")
        XCTAssertEqual(sample(after, "recurd_streams_resident"), 2, after)
        XCTAssertEqual(sample(after, "recurd_connections_open"), 1, after)
        XCTAssertEqual(sample(after, "recurd_model_reloads_total", "outcome=\"replaced\""), 0, after)
        XCTAssertTrue(after.contains("recurd_model_info{hash=\""), after)
        XCTAssertTrue(after.contains("cell=\"lstm\",layers=\"2\",hidden_size=\"128\",vocabulary_size=\"256\"} 1"), after)
        XCTAssertFalse(after.contains("s0") || after.contains("s1"), "no stream name in a label: \(after)")

        for path in ["/metrics/x", "/nothing"] {
            XCTAssertEqual(try httpGet(address, path).status, 404, path)
        }
        for path in ["/", "/streams"] {
            XCTAssertEqual(try httpGet(address, path).status, 401, "\(path): the live view needs a token")
        }
        let result = try daemon.stop()
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    func test_metrics_evictionsExpiriesAndRefusedConnections() throws {
        let (daemon, address) = try startWithHTTP("127.0.0.1:0", arguments: ["--max-streams", "2", "--idle-timeout", "3",
                                                                              "--max-connections", "1"])
        // The start's readiness probe was a connection too: with room for one, wait until the
        // daemon has counted it closed, or this client could be the one refused.
        try eventually("the readiness probe's connection closed") { try self.scrape(address) } until: { sample($0, "recurd_connections_open") == 0 }
        let client = try daemon.connect()
        for stream in ["a", "b", "c"] {
            let (_, reply) = try client.request(["op": "feed", "stream": stream, "text": "x\n"])
            XCTAssertEqual(reply["done"] as? Bool, true, "\(reply)")
        }
        let refused = try daemon.connect()
        XCTAssertEqual(Protocol.errorCode(try refused.readObject()), "busy")
        let evicted = try scrape(address)
        XCTAssertEqual(sample(evicted, "recurd_streams_evicted_total"), 1, "a third stream over --max-streams 2: \(evicted)")
        XCTAssertEqual(sample(evicted, "recurd_connections_refused_total"), 1, evicted)
        try eventually("both idle streams to expire", timeout: .seconds(20)) {
            try self.scrape(address)
        } until: { sample($0, "recurd_streams_expired_total") == 2 && sample($0, "recurd_streams_resident") == 0 }
    }

    func test_metrics_passPromtool_withStoreAndReload() throws {
        guard let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("promtool is not installed (Debian package 'prometheus'; scripts/ensure-deps installs it)")
        }
        let state = try makeWorkDirectory(self).appendingPathComponent("state")
        let (daemon, address) = try startWithHTTP("127.0.0.1:0", arguments: ["--state-dir", state.path])
        let client = try daemon.connect()
        _ = try client.request(["op": "feed", "stream": "a", "text": "one line\n"])
        _ = try client.request(["op": "nope"])
        daemon.child.signal(SIGHUP)
        try eventually("the reload to be counted", timeout: .seconds(20)) {
            try self.scrape(address)
        } until: { sample($0, "recurd_model_reloads_total", "outcome=\"replaced\"") == 1 }
        let exposition = try scrape(address)
        XCTAssertGreaterThan(sample(exposition, "recurd_store_written_bytes_total") ?? 0, 0, exposition)
        XCTAssertGreaterThan(sample(exposition, "recurd_store_commit_seconds_count") ?? 0, 0, exposition)
        XCTAssertNotNil(sample(exposition, "recurd_streams_stored"), exposition)
        XCTAssertEqual(exposition.components(separatedBy: "recurd_model_info{").count - 1, 1, "one model_info series after a reload: \(exposition)")

        let checked = try ChildProcess(URL(fileURLWithPath: promtool), ["check", "metrics"], in: daemon.directory,
                                       stdin: Data(exposition.utf8)).wait(timeout: 30)
        XCTAssertEqual(checked.status, 0, "promtool check metrics: \(checked.stdout)\(checked.stderr)\n\(exposition)")
        // docs/OBSERVABILITY.md lists exactly the metrics served, and its alert rule is valid.
        let doc = try String(contentsOf: Repository.root.appendingPathComponent("docs/OBSERVABILITY.md"), encoding: .utf8)
        let documented = Set(doc.split(separator: "\n").filter { $0.hasPrefix("| `recurd_") }
            .map { String($0.dropFirst(3).prefix(while: { $0 != "`" && $0 != "{" })) })
        let served = Set(exposition.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
            .map { String($0.split(separator: " ")[2]) })
        // The cluster's own metrics are served by cluster nodes only (ClusterTests checks them).
        let clusterOnly = documented.filter { $0.hasPrefix("recurd_cluster_") }
        XCTAssertEqual(documented.subtracting(clusterOnly), served, "docs/OBSERVABILITY.md's table against the exposition")
        let rule = try XCTUnwrap(doc.components(separatedBy: "```yaml\n").dropFirst().first?.components(separatedBy: "```").first)
        let rules = daemon.directory.appendingPathComponent("rules.yml")
        try Data(rule.utf8).write(to: rules)
        let ruleCheck = try ChildProcess(URL(fileURLWithPath: promtool), ["check", "rules", rules.path], in: daemon.directory).wait(timeout: 30)
        XCTAssertEqual(ruleCheck.status, 0, "promtool check rules: \(ruleCheck.stdout)\(ruleCheck.stderr)")
        XCTAssertTrue(rule.contains("recurd_token_surprisal_bucket{le=\"12.0\"}") && exposition.contains("recurd_token_surprisal_bucket{le=\"12.0\"}"),
                      "the rule's bucket boundary is one the histogram has")
    }

    func test_http_onUnixSocket_servesMetrics_andRemovesItsFileAtTheEnd() throws {
        let path = try makeWorkDirectory(self).appendingPathComponent("h.sock").path
        let (daemon, address) = try startWithHTTP("unix:\(path)")
        XCTAssertEqual(address, "unix:\(path)")
        XCTAssertNotNil(sample(try scrape(address), "recurd_tokens_absorbed_total"))
        XCTAssertEqual(try daemon.stop().status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the socket file is removed at a stop")
    }

    func test_stop_closesAnIdleKeepAliveConnection_andEndsPromptly() throws {
        let (daemon, address) = try startWithHTTP("127.0.0.1:0")
        let fd = try connectHTTP(address)
        defer { close(fd) }
        try sendHTTPGet(fd, "/metrics", keepAlive: true)
        var first = [UInt8](repeating: 0, count: 4096)
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&pfd, 1, 20_000), 1, "no response")
        XCTAssertGreaterThan(first.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }, 0)
        let start = ContinuousClock.now
        let result = try daemon.stop(timeout: 20)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5), "an idle HTTP connection must not hold the stop for the grace period")
        _ = try readToEndOfFile(fd, timeout: 5, what: "the idle connection closed at the stop")
    }

    func test_http_badAddress_isAClearFlagError() throws {
        let directory = try makeWorkDirectory(self)
        for (value, fragment) in [("9464", "HOST:PORT"), ("127.0.0.1:99999", "port from 0 to 65535"),
                                  ("::1:9464", "brackets"), ("unix:", "no socket path"), (":9464", "no host")] {
            let result = try runRecurd(["--model", Repository.logsModel.path, "--socket", directory.appendingPathComponent("s").path,
                                        "--http", value], in: directory)
            assertCleanError(result, mentions: ["--http", fragment])
        }
    }

    func test_http_addressInUse_failsTheStartWithTheAddress() throws {
        let (_, tcp) = try startWithHTTP("127.0.0.1:0")
        let path = try makeWorkDirectory(self).appendingPathComponent("h.sock").path
        let (_, unix) = try startWithHTTP("unix:\(path)")
        let directory = try makeWorkDirectory(self)
        for (address, reason) in [(tcp, "Address already in use"), (unix, "another process is already listening")] {
            let result = try runRecurd(["--model", Repository.logsModel.path, "--socket", directory.appendingPathComponent("s").path,
                                        "--http", address], in: directory)
            XCTAssertNotEqual(result.status, 0, result.stderr)
            let last = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
            XCTAssertTrue(last.hasPrefix("recurd: error: cannot serve HTTP at \(address): "), result.stderr)
            XCTAssertTrue(last.contains(reason), result.stderr)
        }
        XCTAssertEqual(try httpGet(unix, "/metrics").status, 200, "the first daemon's socket file is left alone")
    }
}
