import Foundation
import XCTest
import RecurTestSupport

/// Ownership against the real daemon when the victim's stream is in the state directory
/// (evicted, or stored by a restart): another user's refused request loads nothing for it,
/// subscribes it to nothing, leaves the stream's `last_activity` alone and counts against no
/// one's `--max-streams-per-user`. Second users run through setpriv (root only).
final class HostileOwnershipTests: XCTestCase {
    static let nobody = 65534
    static let intruder = 1234

    /// A client driven line by line: each JSON request read from stdin is sent on one
    /// connection, and once its reply arrives one line `{"reply":R,"other":[...]}` is printed,
    /// `other` holding every other line (notices) that came before it.
    static let client = #"""
    import json, socket, sys
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    reader = s.makefile("rb")
    n = -1
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        n += 1
        request = json.loads(line)
        request["id"] = n
        s.sendall((json.dumps(request) + "\n").encode())
        other = []
        while True:
            got = reader.readline()
            if not got:
                raise SystemExit("the daemon closed the connection")
            message = json.loads(got)
            if message.get("id") == n and ("op" in message or "error" in message):
                print(json.dumps({"reply": message, "other": other}), flush=True)
                break
            other.append(message)
    """#

    /// One connection of a client process running as `uid`.
    final class Client {
        let child: ChildProcess
        var sent = 0

        init(_ test: XCTestCase, _ daemon: Daemon, uid: Int) throws {
            let script = daemon.directory.appendingPathComponent("hostile-client.py").path
            let child = try ChildProcess(URL(fileURLWithPath: "/usr/bin/setpriv"),
                                         ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "/usr/bin/python3", script, daemon.socketPath],
                                         in: daemon.directory, keepStdinOpen: true)
            test.addTeardownBlock { child.signal(SIGKILL) }
            self.child = child
        }

        /// Sends `request` and returns its reply and the lines that came before it.
        func request(_ request: [String: Any]) throws -> (reply: [String: Any], other: [[String: Any]]) {
            let data = try JSONSerialization.data(withJSONObject: request)
            try child.writeStdin(data + Data("\n".utf8))
            sent += 1
            try child.waitFor("the reply to \(request)") { child.stdoutLinesSoFar.count >= sent || !child.isRunning }
            guard child.stdoutLinesSoFar.count >= sent,
                  let object = try JSONSerialization.jsonObject(with: Data(child.stdoutLinesSoFar[sent - 1].utf8)) as? [String: Any] else {
                throw TestFailure("the client as another user failed: \(child.stderrText)")
            }
            return (object["reply"] as! [String: Any], object["other"] as! [[String: Any]])
        }
    }

    override func setUpWithError() throws {
        guard getuid() == 0 else {
            throw XCTSkip("running clients as uid \(Self.nobody) and \(Self.intruder) needs root (this test runs as uid \(getuid()))")
        }
        for tool in ["/usr/bin/setpriv", "/usr/bin/python3"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw XCTSkip("\(tool) is needed to run a client as another user")
        }
    }

    /// A work directory every user may enter, with the client script in it.
    func workDirectory() throws -> URL {
        let directory = try makeWorkDirectory(self)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        let script = directory.appendingPathComponent("hostile-client.py")
        try Self.client.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: script.path)
        return directory
    }

    func code(_ reply: [String: Any]) -> String? { Protocol.errorCode(reply) }

    /// Every kind of request another user can make on a stream named `name`.
    func attempts(on name: String) -> [[String: Any]] {
        [["op": "info", "stream": name], ["op": "feed", "stream": name, "text": "x"],
         ["op": "predict", "stream": name, "n": 3], ["op": "reset", "stream": name],
         ["op": "end", "stream": name], ["op": "fork", "stream": name, "into": "stolen-\(name)"]]
    }

    func test_refusedRequestOnAnEvictedStream_subscribesNothing_andChangesNothing() throws {
        let directory = try workDirectory()
        let daemon = try Daemon.start(self, arguments: ["--socket-mode", "666", "--max-streams", "1",
                                                        "--state-dir", directory.appendingPathComponent("state").path],
                                      in: directory)
        let root = try daemon.connect()
        _ = try root.request(["op": "feed", "stream": "secret", "text": "My secret password is hunter"])
        let before = try root.request(["op": "info", "stream": "secret"]).reply
        _ = try root.request(["op": "feed", "stream": "other", "text": "x"])  // moves "secret" to the state directory

        let nobody = try Client(self, daemon, uid: Self.nobody)
        for attempt in attempts(on: "secret") {
            let reply = try nobody.request(attempt).reply
            XCTAssertEqual(code(reply), "permission_denied", "\(attempt): \(reply)")
        }
        let stolen = try root.request(["op": "info", "stream": "stolen-secret"]).reply
        XCTAssertEqual(code(stolen), "unknown_stream", "a refused fork left its target: \(stolen)")

        // Root's stream is as it was, last activity included.
        let after = try root.request(["op": "info", "stream": "secret"]).reply
        XCTAssertEqual(after["offset"] as? Int, before["offset"] as? Int, "\(after)")
        XCTAssertEqual(after["last_activity"] as? String, before["last_activity"] as? String,
                       "a refused request changed the stream's last activity: \(before) -> \(after)")
        XCTAssertNil(code(try root.request(["op": "reset", "stream": "secret"]).reply))
        XCTAssertNil(code(try root.request(["op": "end", "stream": "secret"]).reply))
        _ = try root.request(["op": "feed", "stream": "other", "text": "y"])  // one more turn of the engine
        let seen = try nobody.request(["op": "list"])
        XCTAssertEqual(seen.other.count, 0, "uid \(Self.nobody) was told about root's stream: \(seen.other)")
        XCTAssertEqual((seen.reply["streams"] as? [Any])?.count, 0, "\(seen.reply)")
        XCTAssertTrue(daemon.child.isRunning)
    }

    func test_refusedRequestsOnStoredStreams_countAgainstNoOnesStreamLimit() throws {
        let directory = try workDirectory()
        let arguments = ["--socket-mode", "666", "--max-streams-per-user", "2",
                         "--state-dir", directory.appendingPathComponent("state").path]
        let first = try Daemon.start(self, arguments: arguments, in: directory)
        let owner = try Client(self, first, uid: Self.nobody)
        XCTAssertNil(code(try owner.request(["op": "feed", "stream": "a1", "text": "To be"]).reply))
        XCTAssertNil(code(try owner.request(["op": "feed", "stream": "a2", "text": "or not"]).reply))
        owner.child.closeStdin()
        _ = try owner.child.wait(timeout: 20)
        XCTAssertEqual(try first.stop().status, 0)

        // After the restart a1 and a2 are in the state directory only.
        let daemon = try Daemon.start(self, arguments: arguments, in: directory)
        let intruder = try Client(self, daemon, uid: Self.intruder)
        for name in ["a1", "a2"] {
            for attempt in attempts(on: name) {
                let reply = try intruder.request(attempt).reply
                XCTAssertEqual(code(reply), "permission_denied", "\(attempt): \(reply)")
            }
        }
        let victim = try Client(self, daemon, uid: Self.nobody)
        for name in ["b1", "b2"] {
            let reply = try victim.request(["op": "feed", "stream": name, "text": "x"]).reply
            XCTAssertNil(code(reply), "uid \(Self.nobody)'s feed of \(name) after uid \(Self.intruder)'s refused requests: \(reply)")
        }
        let stats = try daemon.connect().request(["op": "stats"]).reply
        XCTAssertEqual(stats["streams"] as? Int, 2, "refused requests left streams loaded: \(stats)")
        let mine = try victim.request(["op": "info", "stream": "a1"]).reply
        XCTAssertEqual(mine["offset"] as? Int, 5, "the owner still reaches its stored stream: \(mine)")
        XCTAssertTrue(daemon.child.isRunning)
    }
}
