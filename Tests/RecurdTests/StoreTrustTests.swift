import Foundation
import RecurCore
import XCTest
import RecurTestSupport

/// What the state directory carries from one recurd process to the next, through the real
/// binary: no connection inherits an earlier process's private stream, a record the daemon
/// cannot read fails its stream and nothing else, every stream the daemon stored loads again
/// (a word of any length included), and a stream keeps its creation time across a crash.
final class StoreTrustTests: XCTestCase {
    // MARK: Private streams

    /// Issue 9, defect 1: connection numbers restart at 1, private stream names do not recur.
    func test_privateStream_afterKill9AndRestart_isNeitherInheritedNorKept() throws {
        let directory = try makeWorkDirectory(self)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        let state = directory.appendingPathComponent("state").path
        let arguments = ["--socket-mode", "666", "--state-dir", state]
        let first = try Daemon.start(self, arguments: arguments, in: directory)
        let owner = try first.connect()
        let secret = "My secret password is hunter"
        let (events, fed) = try owner.request(["op": "feed", "text": secret])
        XCTAssertNil(Protocol.errorCode(fed), "\(fed)")
        let oldName = try XCTUnwrap(events.first?["stream"] as? String)
        // "~<connection number>.<16 hex digits drawn at start>" (the readiness probe was number 1).
        XCTAssertNotNil(oldName.wholeMatch(of: /~[0-9]+\.[0-9a-f]{16}/), oldName)
        try first.stop(signal: SIGKILL)
        XCTAssertEqual(try sqlite(state, "SELECT count(*) FROM log WHERE stream = '\(oldName)'"), "1", "the feed was logged")

        let second = try Daemon.start(self, arguments: arguments, in: directory)
        // The same connection number in the new process: a fresh private stream.
        let client = try second.connect()
        let (newEvents, reply) = try client.request(["op": "feed", "text": "Hello"])
        XCTAssertNil(Protocol.errorCode(reply), "\(reply)")
        XCTAssertEqual(reply["offset"] as? Int, 5, "\(reply)")
        let newName = try XCTUnwrap(newEvents.first?["stream"] as? String)
        XCTAssertEqual(newName.split(separator: ".").first, oldName.split(separator: ".").first, "the same connection number")
        XCTAssertNotEqual(newName, oldName)
        let (_, info) = try client.request(["op": "info"])
        XCTAssertEqual(info["offset"] as? Int, 5, "\(info)")
        let (_, list) = try client.request(["op": "list"])
        XCTAssertEqual((list["streams"] as? [[String: Any]])?.compactMap { $0["stream"] as? String }, [newName])
        // The dead connection's secret is deleted from the store.
        try waitFor("the old private stream deleted from the store", second) {
            (try? sqlite(state, "SELECT count(*) FROM log WHERE stream = '\(oldName)'")) == "0"
        }
        XCTAssertTrue(try String(contentsOf: second.child.stderrURL, encoding: .utf8)
            .contains("deleted 1 private streams of connections that are gone"))

        // Another user on its first connection, after another crash: its own fresh stream.
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("running a client as uid 65534 needs root and setpriv (this test runs as uid \(getuid()))")
        }
        try second.stop(signal: SIGKILL)
        let third = try Daemon.start(self, arguments: arguments, in: directory)
        let replies = try runAsNobody(third, [["op": "feed", "text": "Hello"], ["op": "info"]])
        XCTAssertEqual(replies.count, 2)
        XCTAssertNil(Protocol.errorCode(replies[0]), "\(replies[0])")
        XCTAssertEqual(replies[1]["offset"] as? Int, 5, "\(replies[1])")
        XCTAssertEqual(replies[1]["owner"] as? Int, 65534, "\(replies[1])")
    }

    // MARK: Malformed records

    /// Issue 9, defect 8: a value of the wrong type, out of range or truncated in any column
    /// the store reads fails that stream with `internal` and a log line naming it; the daemon
    /// and every other stream go on.
    func test_malformedValuesInTheStore_failTheirStreamOnly() throws {
        let directory = try makeWorkDirectory(self)
        let state = directory.appendingPathComponent("state").path
        let arguments = ["--state-dir", state, "--checkpoint-interval", "2"]
        // stream -> the statement that spoils it (after the daemon is gone).
        let spoilers: [(String, String)] = [
            ("owner-text", #"UPDATE log SET owner = 'abc' WHERE stream = 'owner-text'"#),
            ("owner-negative", #"UPDATE log SET owner = -1 WHERE stream = 'owner-negative'"#),
            ("owner-huge", #"UPDATE log SET owner = 4294967296 WHERE stream = 'owner-huge'"#),
            ("owner-real", #"UPDATE log SET owner = 1.5 WHERE stream = 'owner-real'"#),
            ("offset-text", #"UPDATE log SET "offset" = 'x' WHERE stream = 'offset-text'"#),
            ("offset-max", #"UPDATE log SET "offset" = 9223372036854775807 WHERE stream = 'offset-max'"#),
            ("offset-negative", #"UPDATE log SET "offset" = -3 WHERE stream = 'offset-negative'"#),
            ("vocabulary-text", #"UPDATE log SET vocabulary = 'v' WHERE stream = 'vocabulary-text'"#),
            ("tokens-text", #"UPDATE log SET tokens = 'text' WHERE stream = 'tokens-text'"#),
            ("tokens-truncated", #"UPDATE log SET tokens = substr(tokens, 1, 3) WHERE stream = 'tokens-truncated'"#),
            ("pending-integer", #"UPDATE log SET pending = 42 WHERE stream = 'pending-integer'"#),
            ("created-text", #"UPDATE log SET created = 'yesterday' WHERE stream = 'created-text'"#),
            ("record-truncated", #"UPDATE checkpoint SET record = substr(record, 1, 40) WHERE stream = 'record-truncated'"#),
            ("record-text", #"UPDATE checkpoint SET record = 'RCSN' WHERE stream = 'record-text'"#),
            ("record-integer", #"UPDATE checkpoint SET record = 7 WHERE stream = 'record-integer'"#),
        ]
        let first = try Daemon.start(self, arguments: arguments, in: directory)
        let client = try first.connect()
        for name in spoilers.map(\.0) + ["good", "unnamed"] {
            let (_, reply) = try client.request(["op": "feed", "stream": name, "text": "To be, or not"])
            XCTAssertNil(Protocol.errorCode(reply), "\(reply)")
        }
        // A graceful stop checkpoints every stream; the log rows stay (they are few).
        XCTAssertEqual(try first.stop().status, 0)
        let checkpointed = try sqlite(state, "SELECT count(*) FROM checkpoint WHERE stream LIKE 'record-%'")
        XCTAssertEqual(checkpointed, "3", "the record- streams have a checkpoint to spoil")
        XCTAssertEqual(try sqlite(state, "SELECT count(*) FROM log WHERE stream = 'owner-text'"), "1", "and a log row")
        try sqlite(state, spoilers.map(\.1).joined(separator: ";\n")
                   + ";\nUPDATE log SET stream = CAST('unnamed' AS BLOB) WHERE stream = 'unnamed'"
                   + ";\nUPDATE checkpoint SET stream = NULL WHERE stream = 'unnamed'")

        let second = try Daemon.start(self, arguments: arguments, in: directory)
        let probe = try second.connect()
        for (name, spoiler) in spoilers {
            let (_, reply) = try probe.request(["op": "info", "stream": name])
            XCTAssertEqual(Protocol.errorCode(reply), "internal", "\(spoiler): \(reply)")
            let message = (reply["error"] as? [String: Any])?["message"] as? String ?? ""
            XCTAssertTrue(message.contains("'\(name)'"), "\(spoiler): \(message)")
            // Asking again fails the same way: the daemon is still there.
            XCTAssertEqual(Protocol.errorCode(try probe.request(["op": "feed", "stream": name, "text": "x"]).reply), "internal", spoiler)
        }
        let (_, good) = try probe.request(["op": "info", "stream": "good"])
        XCTAssertEqual(good["offset"] as? Int, 13, "\(good)")
        XCTAssertTrue(second.child.isRunning)
        let log = try String(contentsOf: second.child.stderrURL, encoding: .utf8)
        for (name, _) in spoilers {
            let lines = log.split(separator: "\n").filter { $0.contains("stream '\(name)' in the state store cannot be loaded") }
            XCTAssertEqual(lines.count, 1, "one log line for '\(name)' in:\n\(log)")
        }
        XCTAssertTrue(log.contains("whose name is not text"), log)
        XCTAssertEqual(try second.stop().status, 0)
    }

    // MARK: Word runs

    /// Issue 9, defect 4: a word longer than any token is held back bounded, stored, and its
    /// stream loads again after a crash or a graceful stop; so does a run stored unbounded by
    /// an older recurd.
    func test_hugeWord_isHeldBounded_andItsStreamLoadsAfterRestarts() throws {
        let directory = try makeWorkDirectory(self)
        let model = directory.appendingPathComponent("word.safetensors")
        try wordModel().write(to: model.path)
        let state = directory.appendingPathComponent("state").path
        let arguments = ["--state-dir", state, "--checkpoint-interval", "1"]
        let huge = "hello " + String(repeating: "a", count: 70_000)

        for signal in [SIGKILL, SIGTERM] {
            let first = try Daemon.start(self, model: model, arguments: arguments, in: directory)
            let client = try first.connect()
            let (_, fed) = try client.request(["op": "feed", "stream": "w", "text": huge])
            XCTAssertEqual(fed["tokens"] as? Int, 2, "hello and the space: \(fed)")
            let (_, held) = try client.request(["op": "info", "stream": "w"])
            let pending = try XCTUnwrap(held["pending_bytes"] as? Int, "\(held)")
            XCTAssertLessThanOrEqual(pending, IncrementalEncoder.maxPendingBytes)
            XCTAssertGreaterThan(pending, 1024, "the overlong run stays pending until it ends")
            try first.stop(signal: signal)

            let second = try Daemon.start(self, model: model, arguments: arguments, in: directory)
            let again = try second.connect()
            let (_, info) = try again.request(["op": "info", "stream": "w"])
            XCTAssertEqual(info["offset"] as? Int, 2, "after signal \(signal): \(info)")
            XCTAssertEqual(info["pending_bytes"] as? Int, pending, "after signal \(signal)")
            // The run goes on, ends as one <unk>, and the stream works.
            let (events, more) = try again.request(["op": "feed", "stream": "w", "text": "aaaa hello", "flush": true])
            XCTAssertEqual(events.compactMap { $0["token"] as? String }, ["<unk>", " ", "hello"], "after signal \(signal): \(more)")
            XCTAssertNil(Protocol.errorCode(try again.request(["op": "end", "stream": "w"]).reply))
            try second.stop()
        }

        // A record of the old code: the whole 70 000-byte run as the log row's pending text.
        let old = try Daemon.start(self, model: model, arguments: arguments, in: directory)
        XCTAssertNil(Protocol.errorCode(try old.connect().request(["op": "feed", "stream": "old", "text": "hello "]).reply))
        try old.stop(signal: SIGKILL)
        try sqlite(state, """
            DELETE FROM checkpoint WHERE stream = 'old';
            UPDATE log SET pending = CAST(replace(hex(zeroblob(70000)), '00', 'a') AS BLOB) WHERE stream = 'old'
            """)
        XCTAssertEqual(try sqlite(state, "SELECT max(length(pending)) FROM log WHERE stream = 'old'"), "70000")
        let new = try Daemon.start(self, model: model, arguments: arguments, in: directory)
        let client = try new.connect()
        let (_, info) = try client.request(["op": "info", "stream": "old"])
        XCTAssertEqual(info["offset"] as? Int, 1, "hello (its space was pending): \(info)")
        XCTAssertLessThanOrEqual(info["pending_bytes"] as? Int ?? .max, IncrementalEncoder.maxPendingBytes, "\(info)")
        let (events, _) = try client.request(["op": "feed", "stream": "old", "text": " hello", "flush": true])
        XCTAssertEqual(events.compactMap { $0["token"] as? String }, ["<unk>", " ", "hello"])
        XCTAssertNil(Protocol.errorCode(try client.request(["op": "reset", "stream": "old"]).reply))
        XCTAssertNil(Protocol.errorCode(try client.request(["op": "end", "stream": "old"]).reply))
        try new.stop()
    }

    // MARK: Creation time

    /// Issue 14, item 5: a stream rebuilt from its log after `kill -9` keeps its creation
    /// time, and keeps it through later graceful restarts.
    func test_createdTime_survivesKill9AndLaterGracefulRestarts() throws {
        let directory = try makeWorkDirectory(self)
        let arguments = ["--state-dir", directory.appendingPathComponent("state").path]
        let first = try Daemon.start(self, arguments: arguments, in: directory)
        let client = try first.connect()
        XCTAssertNil(Protocol.errorCode(try client.request(["op": "feed", "stream": "s", "text": "To be"]).reply))
        let created = try XCTUnwrap(try client.request(["op": "info", "stream": "s"]).reply["created"] as? String)
        // A restore happens a daemon start later, so its time (milliseconds in `created`) differs.
        try first.stop(signal: SIGKILL)

        var daemon = try Daemon.start(self, arguments: arguments, in: directory)
        for restart in ["kill -9", "graceful stop", "another graceful stop"] {
            let (_, info) = try daemon.connect().request(["op": "info", "stream": "s"])
            XCTAssertEqual(info["offset"] as? Int, 5, "after the \(restart): \(info)")
            XCTAssertEqual(info["created"] as? String, created, "after the \(restart)")
            try daemon.stop()
            daemon = try Daemon.start(self, arguments: arguments, in: directory)
        }
        try daemon.stop()
    }

    // MARK: Helpers

    /// A word model whose vocabulary knows "hello", " " and <unk> (random weights: the tests
    /// look at tokens, not predictions).
    private func wordModel() throws -> Model {
        let vocabulary = try Vocabulary.build(kind: .word, corpus: "hello hello world", unknownPolicy: .replace)
        let config = ModelConfig(cell: .lstm, vocabularySize: vocabulary.count, hiddenSize: 8, layers: 1, embeddingSize: 4)
        return Model.random(config: config, vocabulary: vocabulary, seed: 3)
    }

    /// Runs `sql` on the state directory's database with the sqlite3 shell; its output, trimmed.
    @discardableResult
    private func sqlite(_ state: String, _ sql: String) throws -> String {
        let shell = "/usr/bin/sqlite3"
        guard FileManager.default.isExecutableFile(atPath: shell) else {
            throw XCTSkip("\(shell) is needed to read and edit the state store")
        }
        let child = try ChildProcess(URL(fileURLWithPath: shell), ["-bail", state + "/streams.sqlite"],
                                     in: URL(fileURLWithPath: state), stdin: Data((sql + ";\n").utf8))
        let result = try child.wait(timeout: 30)
        guard result.status == 0 else { throw TestFailure("sqlite3 failed (\(result.status)): \(result.stderr)\n\(sql)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Waits for `condition`, polling every 20 ms, failing after 20 s.
    private func waitFor(_ what: String, _ daemon: Daemon, _ condition: () -> Bool) throws {
        try daemon.child.waitFor(what, timeout: 20, condition)
    }

    /// Sends `requests` on one connection as uid 65534 (through setpriv); the replies.
    private func runAsNobody(_ daemon: Daemon, _ requests: [[String: Any]]) throws -> [[String: Any]] {
        let script = daemon.directory.appendingPathComponent("client.py")
        try OwnershipTests.client.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: script.path)
        let plan: [String: Any] = ["connections": 1, "requests": requests.map { [0, $0] }]
        let child = try ChildProcess(URL(fileURLWithPath: "/usr/bin/setpriv"),
                                     ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", script.path, daemon.socketPath],
                                     in: daemon.directory, stdin: try JSONSerialization.data(withJSONObject: plan))
        let result = try child.wait(timeout: 60)
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
              let replies = object["replies"] as? [[String: Any]] else {
            throw TestFailure("the client as uid 65534 failed (\(result.status)): \(result.stderr) \(result.stdout)")
        }
        return replies
    }
}
