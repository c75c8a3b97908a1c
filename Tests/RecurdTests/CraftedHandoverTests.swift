import Foundation
import XCTest
import RecurTestSupport

/// The real daemon started as systemd starts it after a restart, with what a previous process
/// handed over (LISTEN_FDS: the listening socket, the `recurd-handover` memfd and the
/// `recurd-conn-<id>` sockets), but crafted: duplicate ids, ids beyond the last one, names that
/// do not match, descriptors that are not connections, two states or none, bytes that are not
/// UTF-8 or JSON, foreign subscriptions. Each must be logged and end in a fresh start: the
/// daemon serves, and every handed-over client sees its connection closed. A consistent
/// handover is still taken over.
final class CraftedHandoverTests: XCTestCase {
    /// Binds the listening socket, makes the handed-over descriptors, forks a child that holds
    /// the clients' ends (it sends a stats request on each and reports the first line or
    /// "closed"), then puts the descriptors at 3... and execs recurd with LISTEN_* set, as
    /// systemd would.
    static let launcher = #"""
    import base64, fcntl, json, os, socket, sys
    spec = json.loads(sys.argv[1])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(spec["listen"])
    listener.listen(64)
    passed = [("recurd-listen", listener.fileno())]
    clients = []
    keep = []
    for name in spec["sockets"]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        passed.append((name, b.fileno()))
        clients.append((name, a))
        keep.append(b)
    for name in spec["pipes"]:
        r, w = os.pipe()
        passed.append((name, r))
    for state in spec["states"]:
        fd = os.memfd_create("recurd-handover")
        os.write(fd, base64.b64decode(state))
        passed.append(("recurd-handover", fd))
    if os.fork() == 0:
        listener.close()
        for b in keep:
            b.close()
        seen = {}
        for name, a in clients:
            a.settimeout(30)
            try:
                a.sendall(b'{"op":"stats","id":"probe"}\n')
                data = b""
                while not data.endswith(b"\n"):
                    chunk = a.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                seen[name] = data.decode() if data else "closed"
            except (ConnectionResetError, BrokenPipeError):  # closed before or after the request
                seen[name] = "closed"
            except socket.timeout:
                seen[name] = "timeout"
        with open(spec["report"] + ".tmp", "w") as f:
            json.dump(seen, f)
        os.rename(spec["report"] + ".tmp", spec["report"])
        os._exit(0)
    for _, a in clients:
        a.close()
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 200 + i) for i, (_, fd) in enumerate(passed)]
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i, inheritable=True)
        os.close(fd)
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env["LISTEN_PID"] = str(os.getpid())
    env["LISTEN_FDS"] = str(len(passed))
    env["LISTEN_FDNAMES"] = ":".join(name for name, _ in passed)
    os.execve(spec["argv"][0], spec["argv"], env)
    """#

    /// One crafted start.
    struct Start {
        var daemon: ChildProcess
        var listen: String
        /// Per handed-over socket: the first line the daemon wrote to it, or "closed".
        var clients: [String: String]
    }

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            throw XCTSkip("/usr/bin/python3 is needed to pass descriptors to recurd as systemd does")
        }
    }

    /// A handover state as the daemon writes it.
    static func state(lastID: UInt64, _ connections: [(id: UInt64, name: String, subscriptions: [String])],
                      version: Int = 1) -> Data {
        let records: [[String: Any]] = connections.map {
            ["id": $0.id, "name": $0.name, "input": ["bytes": [] as [Int], "discarding": false],
             "usedPrivateStream": false, "subscriptions": $0.subscriptions]
        }
        let object: [String: Any] = ["version": version, "lastID": lastID, "connections": records]
        return try! JSONSerialization.data(withJSONObject: object)
    }

    static func connection(_ id: UInt64, name: String? = nil, subscriptions: [String] = []) -> (id: UInt64, name: String, subscriptions: [String]) {
        (id, name ?? "recurd-conn-\(id)", subscriptions)
    }

    /// Starts recurd with `states`, connection sockets named `sockets` and pipes named `pipes`
    /// handed over; waits until it serves a fresh connection and every handed-over client has
    /// its answer.
    func start(states: [Data], sockets: [String], pipes: [String] = []) throws -> Start {
        let directory = try makeWorkDirectory(self)
        let listen = directory.appendingPathComponent("l.sock").path
        let report = directory.appendingPathComponent("clients.json").path
        let spec: [String: Any] = [
            "listen": listen, "report": report, "sockets": sockets, "pipes": pipes,
            "states": states.map { $0.base64EncodedString() },
            "argv": [Executables.recurd.path, "--model", Repository.shakespeareModel.path, "--log-level", "info"],
        ]
        let specText = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let daemon = try ChildProcess(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", Self.launcher, specText], in: directory)
        addTeardownBlock { daemon.signal(SIGKILL) }
        try daemon.waitFor("the daemon to serve a fresh connection", timeout: 30) {
            guard let client = try? SocketClient(path: listen),
                  let (_, reply) = try? client.request(["op": "stats"]) else { return false }
            return reply["streams"] != nil
        }
        try daemon.waitFor("the handed-over clients' report", timeout: 40) { FileManager.default.fileExists(atPath: report) }
        let clients = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: String]
        return Start(daemon: daemon, listen: listen, clients: clients ?? [:])
    }

    /// A crafted start: logged with `reason`, a fresh start, every handed-over client closed,
    /// the daemon alive and stopping cleanly.
    func assertFreshStart(states: [Data], sockets: [String], pipes: [String] = [], reason: String,
                          file: StaticString = #filePath, line: UInt = #line) throws {
        let run = try start(states: states, sockets: sockets, pipes: pipes)
        let log = run.daemon.stderrText
        XCTAssertTrue(log.contains("cannot take over the previous process's connections, starting afresh"), log, file: file, line: line)
        XCTAssertTrue(log.contains(reason), "'\(reason)' not in: \(log)", file: file, line: line)
        XCTAssertFalse(log.contains("took over"), log, file: file, line: line)
        for name in sockets {
            XCTAssertEqual(run.clients[name], "closed", "\(name) must be closed: \(run.clients)", file: file, line: line)
        }
        // New connections are numbered from 1 again and served.
        let (_, reply) = try SocketClient(path: run.listen).request(["op": "feed", "text": "To be"])
        XCTAssertEqual(reply["offset"] as? Int, 5, "\(reply)", file: file, line: line)
        XCTAssertTrue(run.daemon.isRunning, file: file, line: line)
        run.daemon.signal(SIGTERM)
        let result = try run.daemon.wait(timeout: 20)
        XCTAssertEqual(result.status, 0, "exit \(result.status), signalled \(result.signalled): \(result.stderr)", file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Fatal error"), result.stderr, file: file, line: line)
    }

    func test_consistentHandover_isTakenOver() throws {
        let run = try start(states: [Self.state(lastID: 3, [Self.connection(2), Self.connection(3, subscriptions: ["a", "b"])])],
                            sockets: ["recurd-conn-2", "recurd-conn-3"])
        XCTAssertTrue(run.daemon.stderrText.contains("took over 2 connections"), run.daemon.stderrText)
        for name in ["recurd-conn-2", "recurd-conn-3"] {
            XCTAssertTrue(run.clients[name]?.hasPrefix(#"{"id":"probe","op":"stats""#) == true, "\(name): \(run.clients)")
        }
    }

    func test_twoConnectionsSharingAnID_startAfresh() throws {
        try assertFreshStart(states: [Self.state(lastID: 2, [Self.connection(1), Self.connection(1, name: "recurd-conn-2")])],
                             sockets: ["recurd-conn-1", "recurd-conn-2"], reason: "two connections have the id 1")
    }

    func test_idsBeyondTheLastOrZero_startAfresh() throws {
        try assertFreshStart(states: [Self.state(lastID: 1, [Self.connection(1), Self.connection(2)])],
                             sockets: ["recurd-conn-1", "recurd-conn-2"], reason: "connection id 2 is outside 1...1")
        try assertFreshStart(states: [Self.state(lastID: 1, [Self.connection(0)])],
                             sockets: ["recurd-conn-0"], reason: "connection id 0 is outside")
        // The next accepted connection would overflow the numbering.
        try assertFreshStart(states: [Self.state(lastID: UInt64.max, [Self.connection(1)])],
                             sockets: ["recurd-conn-1"], reason: "the last connection id \(UInt64.max) is above")
    }

    func test_namesAndDescriptorsThatDoNotMatch_startAfresh() throws {
        try assertFreshStart(states: [Self.state(lastID: 2, [Self.connection(1, name: "recurd-conn-2")])],
                             sockets: ["recurd-conn-2"], reason: "stored under the name 'recurd-conn-2', not 'recurd-conn-1'")
        try assertFreshStart(states: [Self.state(lastID: 2, [Self.connection(1), Self.connection(2)])],
                             sockets: ["recurd-conn-1"], pipes: ["recurd-conn-2"],
                             reason: "the descriptor handed over as 'recurd-conn-2' is not a socket")
        try assertFreshStart(states: [Self.state(lastID: 2, [Self.connection(1)])],
                             sockets: ["recurd-conn-1", "recurd-conn-2"],
                             reason: "the socket 'recurd-conn-2' was handed over without a record")
        try assertFreshStart(states: [Self.state(lastID: 1, [Self.connection(1)])],
                             sockets: ["recurd-conn-1", "recurd-conn-1"], reason: "two sockets were handed over as 'recurd-conn-1'")
    }

    func test_noStateTwoStatesOrUnreadableState_startAfresh() throws {
        try assertFreshStart(states: [], sockets: ["recurd-conn-1"], reason: "handed over without a state")
        let one = Self.state(lastID: 1, [Self.connection(1)])
        try assertFreshStart(states: [one, one], sockets: ["recurd-conn-1"], reason: "2 handover states were passed")
        try assertFreshStart(states: [Data([0x7B, 0xFF, 0x7D])], sockets: ["recurd-conn-1"], reason: "not valid UTF-8")
        try assertFreshStart(states: [Data("[1,2".utf8)], sockets: ["recurd-conn-1"], reason: "not readable")
        try assertFreshStart(states: [Self.state(lastID: 1, [Self.connection(1)], version: 2)], sockets: ["recurd-conn-1"],
                             reason: "version 2")
    }

    func test_subscriptionsThatNoRecurdWrites_startAfresh() throws {
        try assertFreshStart(states: [Self.state(lastID: 7, [Self.connection(1, subscriptions: ["~7"])])],
                             sockets: ["recurd-conn-1"], reason: "private stream '~7' of another connection")
        try assertFreshStart(states: [Self.state(lastID: 1, [Self.connection(1, subscriptions: ["gnp\u{202E}exe"])])],
                             sockets: ["recurd-conn-1"], reason: "U+202E")
        try assertFreshStart(states: [Self.state(lastID: 1, [Self.connection(1, subscriptions: ["b", "a"])])],
                             sockets: ["recurd-conn-1"], reason: "not sorted and unique")
    }
}
