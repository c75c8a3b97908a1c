import Foundation
import RecurTestSupport
import XCTest

/// The live view's access rules and event streams through the real recurd: nothing but
/// /metrics answers without a valid token; the admin token sees every stream; a token that
/// `recur view` got for a uid sees only that uid's streams; a watcher that stops reading is cut
/// off without slowing the clients that feed the stream.
final class LiveViewTests: XCTestCase {
    private let protectedPaths = ["/", "/streams", "/model", "/events?stream=s"]

    func test_withoutAValidToken_onlyMetricsAnswers() throws {
        let live = try LiveDaemon.start(self)
        let (_, reply) = try live.daemon.connect().request(["op": "feed", "stream": "s", "text": "secret text"])
        XCTAssertEqual(reply["done"] as? Bool, true)
        XCTAssertEqual(try live.get("/metrics", token: nil).status, 200)
        for path in protectedPaths {
            let none = try live.get(path, token: nil)
            XCTAssertEqual(none.status, 401, "\(path) without a token")
            XCTAssertTrue(none.body.contains("needs a token"), none.body)
            XCTAssertFalse(none.body.contains("secret"))
            var wrong = live.adminToken
            wrong.replaceSubrange(wrong.startIndex...wrong.startIndex, with: wrong.first == "a" ? "b" : "a")
            for token in [wrong, "x", String(live.adminToken.dropLast()), live.adminToken + "0"] {
                let refused = try live.get(path, token: token)
                XCTAssertEqual(refused.status, 403, "\(path) with token '\(token)'")
                XCTAssertFalse(refused.body.contains("secret"))
            }
            let badCookie = try httpGet(live.address, path, headers: ["Cookie": "recurd_view=\(wrong)"])
            XCTAssertEqual(badCookie.status, 403, path)
        }
        let mode = try FileManager.default.attributesOfItem(atPath: live.daemon.socketPath + ".http-token")[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o640, "the token file is readable by the daemon's user and group only")
    }

    func test_tokenFile_thatCannotBeWritten_stopsTheStart_andWithoutAPlaceForIt_theViewIsOff() throws {
        let directory = try makeWorkDirectory(self)
        let refused = try runRecurd(["--model", Repository.logsModel.path, "--socket", directory.appendingPathComponent("d.sock").path,
                                     "--http", "127.0.0.1:0", "--http-token-file", directory.appendingPathComponent("missing/token").path],
                                    in: directory)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("cannot write the HTTP token file '\(directory.path)/missing/token': No such file or directory"),
                      refused.stderr)
        // --stdin alone has no socket or state directory to put the token beside: /metrics only.
        let child = try ChildProcess(Executables.recurd, ["--model", Repository.logsModel.path, "--stdin", "--http", "127.0.0.1:0"],
                                     in: directory, keepStdinOpen: true)
        addTeardownBlock { child.signal(SIGKILL) }
        let address = try child.waitForHTTPAddress()
        XCTAssertTrue(child.stderrText.contains("the live view is off"), child.stderrText)
        XCTAssertEqual(try httpGet(address, "/metrics").status, 200)
        XCTAssertEqual(try httpGet(address, "/").status, 404)
        child.closeStdin()
        XCTAssertEqual(try child.wait().status, 0)
    }

    func test_tokenInTheQuery_becomesACookie_whichAuthenticatesThePagesRequests() throws {
        let live = try LiveDaemon.start(self)
        _ = try live.daemon.connect().request(["op": "feed", "stream": "s", "text": "To be"])
        let page = try httpGet(live.address, "/?token=\(live.adminToken)&stream=s")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.body.contains("<title>recurd live view</title>"))
        let cookie = try XCTUnwrap(page.headers["set-cookie"])
        XCTAssertTrue(cookie.hasPrefix("recurd_view=\(live.adminToken);"), cookie)
        XCTAssertTrue(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), cookie)
        XCTAssertFalse(page.body.contains("http://") || page.body.contains("https://"), "the page loads nothing from elsewhere")
        let streams = try httpGet(live.address, "/streams", headers: ["Cookie": "other=1; recurd_view=\(live.adminToken)"])
        XCTAssertEqual(streams.status, 200, streams.body)
        XCTAssertTrue(streams.body.contains("\"stream\":\"s\""), streams.body)
    }

    func test_adminTokenSeesEveryStream_aUsersTokenOnlyItsOwn() throws {
        guard getuid() == 0 else { throw XCTSkip("running a client as another uid needs root") }
        let user = 65534
        let directory = try makeWorkDirectory(self)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        let live = try LiveDaemon.start(self, arguments: ["--socket-mode", "666"], in: directory)
        let root = try live.daemon.connect()
        _ = try root.request(["op": "feed", "stream": "roots", "text": "root's text"])
        // Private streams are never listed.
        _ = try root.request(["op": "feed", "text": "private"])

        func asUser(_ arguments: [String], stdin: String? = nil) throws -> ProcessResult {
            try ChildProcess(URL(fileURLWithPath: "/usr/bin/setpriv"),
                             ["--reuid=\(user)", "--regid=\(user)", "--clear-groups", Executables.recur.path] + arguments,
                             in: directory, stdin: stdin.map { Data($0.utf8) }).wait(timeout: 60)
        }
        let fed = try asUser(["connect", "--socket", live.daemon.socketPath, "--stream", "users"], stdin: "user's text")
        XCTAssertEqual(fed.status, 0, fed.stderr)
        let view = try asUser(["view", "--socket", live.daemon.socketPath, "--json"])
        XCTAssertEqual(view.status, 0, view.stderr)
        let reply = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(view.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(reply["uid"] as? Int, user)
        XCTAssertEqual(reply["admin"] as? Bool, false)
        let userToken = try XCTUnwrap(reply["token"] as? String)
        XCTAssertNotEqual(userToken, live.adminToken)
        XCTAssertEqual(reply["url"] as? String, "http://\(live.address)/?token=\(userToken)")
        // The same user gets the same token again; the URL form carries the stream asked.
        let url = try asUser(["view", "--socket", live.daemon.socketPath, "--stream", "users"])
        XCTAssertEqual(url.stdout, "http://\(live.address)/?token=\(userToken)&stream=users\n", url.stderr)

        func listed(_ token: String) throws -> [String] {
            let response = try live.get("/streams", token: token)
            XCTAssertEqual(response.status, 200, response.body)
            let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
            return (object?["streams"] as? [[String: Any]] ?? []).compactMap { $0["stream"] as? String }
        }
        XCTAssertEqual(try listed(live.adminToken), ["roots", "users"])
        XCTAssertEqual(try listed(userToken), ["users"])

        // Watching another user's stream is refused; one's own works; the admin watches all.
        let refused = try live.get("/events?stream=roots", token: userToken)
        XCTAssertEqual(refused.status, 403, refused.body)
        XCTAssertTrue(refused.body.contains("permission_denied"), refused.body)
        XCTAssertFalse(refused.body.contains("root's text"))
        XCTAssertEqual(try live.get("/events?stream=nobody", token: userToken).status, 404)
        for (token, stream) in [(userToken, "users"), (live.adminToken, "users"), (live.adminToken, "roots")] {
            let events = try EventStreamReader(live, "/events?stream=\(stream)&k=1", token: token)
            let ready = try XCTUnwrap(try events.next())
            XCTAssertEqual(ready.name, "ready")
            XCTAssertEqual(events.status, 200)
        }
    }

    func test_events_carryTheProtocolsEvents_withTheWatchersUnits_whoeverFeeds() throws {
        let live = try LiveDaemon.start(self)
        let feeder = try live.daemon.connect()
        _ = try feeder.request(["op": "feed", "stream": "w", "text": "MENENIUS:"])
        let events = try EventStreamReader(live, "/events?stream=w&k=2&units=300,3", token: live.adminToken)
        let ready = try XCTUnwrap(try events.next())
        XCTAssertEqual(ready.name, "ready")
        XCTAssertEqual(ready.data, #"{"stream":"w","k":2,"units":[300,3]}"#)
        // The feeder asks for k 0 and its own units: the watcher gets its own k and units.
        let (fed, _) = try feeder.request(["op": "feed", "stream": "w", "text": "\nWhat", "k": 0, "units": [3]])
        var watched: [[String: Any]] = []
        for _ in fed {
            let event = try XCTUnwrap(try events.next())
            XCTAssertEqual(event.name, "message")
            watched.append(try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any]))
        }
        for (mine, theirs) in zip(watched, fed) {
            for key in ["stream", "offset", "token", "tid", "logprob"] {
                XCTAssertEqual(mine[key] as? NSObject, theirs[key] as? NSObject, key)
            }
            XCTAssertEqual((mine["next"] as? [Any])?.count, 2)
            let units = try XCTUnwrap(mine["units"] as? [Double])
            XCTAssertEqual(units.count, 2)
            XCTAssertEqual(units[1], (theirs["units"] as? [Double])?[0], "unit 3 is the same value for both")
        }
        // Ending the stream ends the watch, saying why.
        _ = try feeder.request(["op": "end", "stream": "w"])
        let end = try XCTUnwrap(try events.next())
        XCTAssertEqual(end.name, "end")
        XCTAssertTrue(end.data.contains(#""reason":"gone""#), end.data)
        XCTAssertNil(try events.next(), "the response ends")
        try live.waitForWatchers(0)
    }

    func test_aStreamHasAtMost16Watchers() throws {
        let live = try LiveDaemon.start(self)
        _ = try live.daemon.connect().request(["op": "feed", "stream": "busy", "text": "To"])
        var readers: [EventStreamReader] = []
        for _ in 0..<16 {
            let reader = try EventStreamReader(live, "/events?stream=busy", token: live.adminToken)
            XCTAssertEqual(try reader.next()?.name, "ready")
            readers.append(reader)
        }
        let refused = try live.get("/events?stream=busy", token: live.adminToken)
        XCTAssertEqual(refused.status, 429, refused.body)
        XCTAssertTrue(refused.body.contains("already has 16 watchers"), refused.body)
        // A viewer that goes away is detached at its next write: here the next token.
        readers.removeLast()
        _ = try live.daemon.connect().request(["op": "feed", "stream": "busy", "text": " be, or not to be"])
        try live.waitForWatchers(15)
        let again = try EventStreamReader(live, "/events?stream=busy", token: live.adminToken)
        XCTAssertEqual(try again.next()?.name, "ready")
    }

    func test_aWatcherThatStopsReading_isCutOff_andDoesNotSlowTheFeedingClient() throws {
        let live = try LiveDaemon.start(self, model: Repository.logsModel)
        let client = try live.daemon.connect()
        let line = "GET /index.html HTTP/1.1 200 " + String(repeating: "x", count: 70) + "\n"
        let text = String(repeating: line, count: 8)  // 800 tokens
        func feed(_ stream: String) throws -> Double {
            let start = Date()
            let (events, reply) = try client.request(["op": "feed", "stream": stream, "text": text, "k": 0])
            XCTAssertEqual(reply["done"] as? Bool, true, "\(reply)")
            XCTAssertEqual(events.count, text.utf8.count)
            return Date().timeIntervalSince(start)
        }
        _ = try client.request(["op": "feed", "stream": "alone", "text": "x"])
        let alone = try feed("alone")
        _ = try client.request(["op": "feed", "stream": "watched", "text": "x"])
        // Never read past the head, with a small receive buffer; k 64 and every unit make each
        // event some 4 KB, and the watcher asks to be held at most 64 events.
        let stalled = try EventStreamReader(live, "/events?stream=watched&k=64&units=all&buffer=64", token: live.adminToken,
                                            receiveBuffer: 4096)
        try live.waitForWatchers(1)
        let watched = try feed("watched")
        // Not equal: until it is cut off, the watcher's events (k 64, every unit: ~4 KB of JSON
        // each) are computed on the engine thread and encoded on an event loop that may be the
        // feeding connection's, which costs a debug build on a loaded machine a few seconds. A
        // feed that waited for the watcher would never finish while the reader sleeps.
        XCTAssertLessThan(watched, alone * 5 + 2, "feeding with a stalled watcher took \(watched) s, alone \(alone) s")
        // 800 events are more than the 64 held for it and what the sockets buffer: it was cut
        // off (detached from the stream) while its connection still waits for the reader.
        try live.waitForWatchers(0)
        // Reading now: what was buffered, then the end, saying why; fewer events than were fed.
        stalled.setReceiveBuffer(1 << 20)
        var received = 0
        var end: (name: String, data: String)?
        while let event = try stalled.next() {
            if event.name == "end" { end = event; break }
            if event.name == "message" { received += 1 }
        }
        XCTAssertTrue(end?.data.contains(#""reason":"overflow""#) == true, "\(String(describing: end))")
        XCTAssertLessThan(received, text.utf8.count)
        XCTAssertGreaterThanOrEqual(received, 64)
    }
}
