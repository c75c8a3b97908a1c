import Foundation
import RecurTestSupport
import XCTest

/// Streams owned by Unix users, against the real daemon: a client running as uid 65534
/// (nobody, through setpriv) cannot use or see root's streams, is held to the per-user stream
/// limit and byte rate, and sees everything when it is in the admin group.
final class OwnershipTests: XCTestCase {
    static let nobody = 65534

    /// A Python client that sends each planned request on its connection, waits for the reply
    /// that ends it, and prints the replies and the elapsed seconds as one JSON object.
    static let client = #"""
    import json, os, socket, sys, time
    plan = json.load(sys.stdin)
    socks = []
    for _ in range(plan["connections"]):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sys.argv[1])
        socks.append((s, s.makefile("rb")))
    replies = []
    start = time.monotonic()
    for i, (c, request) in enumerate(plan["requests"]):
        request["id"] = i
        sock, reader = socks[c]
        sock.sendall((json.dumps(request) + "\n").encode())
        while True:
            line = reader.readline()
            if not line:
                raise SystemExit("the daemon closed the connection")
            message = json.loads(line)
            if message.get("id") == i and ("op" in message or "error" in message):
                replies.append(message)
                break
    print(json.dumps({"uid": os.getuid(), "elapsed": time.monotonic() - start, "replies": replies}))
    """#

    struct Run {
        var uid: Int
        var elapsed: Double
        var replies: [[String: Any]]
    }

    override func setUpWithError() throws {
        guard getuid() == 0 else {
            throw XCTSkip("running a second client as uid 65534 needs root (this test runs as uid \(getuid()))")
        }
        for tool in ["/usr/bin/setpriv", "/usr/bin/python3"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw XCTSkip("\(tool) is needed to run a client as another user")
        }
    }

    /// A daemon on a socket every user may connect to, in a directory every user may enter.
    func startDaemon(_ arguments: [String]) throws -> Daemon {
        let directory = try makeWorkDirectory(self)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        let script = directory.appendingPathComponent("client.py")
        try Self.client.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: script.path)
        return try Daemon.start(self, arguments: ["--socket-mode", "666"] + arguments, in: directory)
    }

    /// Runs the planned requests as `uid` (nil: as this process, root).
    func run(_ daemon: Daemon, as uid: Int?, connections: Int = 1, _ requests: [(Int, [String: Any])]) throws -> Run {
        let plan: [String: Any] = ["connections": connections, "requests": requests.map { [$0.0, $0.1] }]
        let script = daemon.directory.appendingPathComponent("client.py").path
        var command = ["/usr/bin/python3", script, daemon.socketPath]
        if let uid { command = ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups"] + command }
        let child = try ChildProcess(URL(fileURLWithPath: command[0]), Array(command.dropFirst()), in: daemon.directory,
                                     stdin: try JSONSerialization.data(withJSONObject: plan))
        let result = try child.wait(timeout: 60)
        guard result.status == 0, let data = result.stdout.data(using: .utf8),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestFailure("the client failed (\(result.status)): \(result.stderr) \(result.stdout)")
        }
        return Run(uid: object["uid"] as! Int, elapsed: object["elapsed"] as! Double,
                   replies: object["replies"] as! [[String: Any]])
    }

    func code(_ reply: [String: Any]) -> String? { Protocol.errorCode(reply) }

    func names(_ listReply: [String: Any]) -> [String] {
        (listReply["streams"] as? [[String: Any]] ?? []).map { "\($0["stream"]!):\($0["owner"]!)" }
    }

    func test_anotherUser_cannotUseOrSeeAStream_andIsHeldToTheStreamLimit() throws {
        let daemon = try startDaemon(["--max-streams-per-user", "2"])
        let root = try daemon.connect()
        _ = try root.request(["op": "feed", "stream": "roots", "text": "To be"])

        let nobody = try run(daemon, as: Self.nobody, [
            (0, ["op": "feed", "stream": "roots", "text": "x"]),
            (0, ["op": "predict", "stream": "roots", "n": 3]),
            (0, ["op": "info", "stream": "roots"]),
            (0, ["op": "fork", "stream": "roots", "into": "copy"]),
            (0, ["op": "reset", "stream": "roots"]),
            (0, ["op": "end", "stream": "roots"]),
            (0, ["op": "list"]),
            (0, ["op": "feed", "stream": "n1", "text": "a"]),
            (0, ["op": "feed", "stream": "n2", "text": "b"]),
            (0, ["op": "feed", "stream": "n3", "text": "c"]),
            (0, ["op": "list"]),
        ])
        XCTAssertEqual(nobody.uid, Self.nobody)
        let r = nobody.replies
        XCTAssertEqual(r[0..<6].map(code), Array(repeating: "permission_denied", count: 6), "\(r[0..<6])")
        XCTAssertTrue((r[0]["error"] as? [String: Any])?["message"].map { "\($0)".contains("uid 0") } ?? false, "\(r[0])")
        XCTAssertEqual(names(r[6]), [])
        XCTAssertNil(code(r[7]))
        XCTAssertNil(code(r[8]))
        XCTAssertEqual(code(r[9]), "quota_exceeded", "\(r[9])")
        XCTAssertEqual(names(r[10]), ["n1:65534", "n2:65534"])

        // Root's stream is untouched; root (an admin) sees and may use everything.
        let info = try root.request(["op": "info", "stream": "roots"]).reply
        XCTAssertEqual(info["offset"] as? Int, 5)
        XCTAssertEqual(info["owner"] as? Int, 0)
        XCTAssertEqual(names(try root.request(["op": "list"]).reply), ["n1:65534", "n2:65534", "roots:0"])
        XCTAssertNil(code(try root.request(["op": "feed", "stream": "n1", "text": "b"]).reply))
        XCTAssertNil(code(try root.request(["op": "end", "stream": "n2"]).reply))
        XCTAssertTrue(daemon.child.isRunning)
    }

    func test_adminGroupMember_seesAndUsesEveryStream() throws {
        // nobody's primary group is nogroup (65534), so naming it makes nobody an admin.
        guard let group = getgrgid(gid_t(Self.nobody)).map({ String(cString: $0.pointee.gr_name) }) else {
            throw XCTSkip("no group with gid 65534 on this system")
        }
        let daemon = try startDaemon(["--admin-group", group, "--max-streams-per-user", "1"])
        let root = try daemon.connect()
        _ = try root.request(["op": "feed", "stream": "roots", "text": "To be"])
        let admin = try run(daemon, as: Self.nobody, [
            (0, ["op": "list"]),
            (0, ["op": "feed", "stream": "roots", "text": ","]),
            (0, ["op": "feed", "stream": "a1", "text": "a"]),
            (0, ["op": "feed", "stream": "a2", "text": "a"]),
        ])
        XCTAssertEqual(names(admin.replies[0]), ["roots:0"])
        XCTAssertEqual(admin.replies[1]["offset"] as? Int, 6, "\(admin.replies[1])")
        XCTAssertNil(code(admin.replies[3]), "an admin is not held to the stream limit: \(admin.replies[3])")
    }

    func test_adminGroup_thatDoesNotExist_isACleanError() throws {
        let directory = try makeWorkDirectory(self)
        let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--socket", directory.appendingPathComponent("s").path,
                                    "--admin-group", "no-such-group-recur"], in: directory)
        assertCleanError(result, mentions: ["no group named 'no-such-group-recur'"])
    }

    func test_byteRate_isSharedByAUsersConnections_andSlowsThemDown() throws {
        let daemon = try startDaemon(["--max-bytes-per-second-per-user", "4K"])
        // 12 lines of about 1 KiB over three connections: 4 KiB pass at once, the other
        // ~8.3 KiB at 4 KiB/s take about 2 s if the connections share one bucket (0 s if not).
        let pad = String(repeating: "x", count: 1000)
        let requests = (0..<12).map { i in (i % 3, ["op": "stats", "pad": pad] as [String: Any]) }
        let limited = try run(daemon, as: Self.nobody, connections: 3, requests)
        let exempt = try run(daemon, as: nil, connections: 3, requests)
        XCTAssertEqual(limited.replies.compactMap(code), [])
        XCTAssertGreaterThan(limited.elapsed, 1.6, "uid 65534 was not slowed to 4 KiB/s")
        XCTAssertLessThan(limited.elapsed, 10)
        XCTAssertLessThan(exempt.elapsed, limited.elapsed / 2, "root is exempt from the byte rate")
    }
}
