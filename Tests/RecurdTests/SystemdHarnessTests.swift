import Foundation
import XCTest

/// recurd under a real systemd (Debian 12's systemd 252) running as PID 1 in a private
/// namespace, installed with scripts/install: socket activation, READY and a live STATUS,
/// structured journal entries, the watchdog restarting a hung engine, reload with a good and a
/// bad model, restart under load without a disconnect or a lost token, and the units' exposure.
/// Run alone: `swift test --filter SystemdHarnessTests` (DEVELOPERS.md).
final class SystemdHarnessTests: XCTestCase {
    nonisolated(unsafe) static var harness: SystemdHarness?
    nonisolated(unsafe) static var bootError: Error?
    static let workDirectory = URL(fileURLWithPath: "/tmp/recurd-harness-\(getpid())")

    override class func setUp() {
        super.setUp()
        do {
            try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
            let harness = try SystemdHarness.boot(in: workDirectory)
            Self.harness = harness
            try harness.run(["scripts/install", "--binary", Executables.recurd.path])
        } catch {
            bootError = error
        }
    }

    override class func tearDown() {
        harness?.halt()
        harness = nil
        try? FileManager.default.removeItem(at: workDirectory)
        super.tearDown()
    }

    private func booted() throws -> SystemdHarness {
        if let error = Self.bootError { throw error }
        return Self.harness!
    }

    private var socketPath: String { Self.harness!.hostPath("/run/recurd.sock") }

    func test_units_exposureIsAtMost1point5() throws {
        let result = try ChildProcess(URL(fileURLWithPath: "/usr/bin/systemd-analyze"),
                                      ["security", "--offline=yes", Repository.root.appendingPathComponent("systemd/recurd.service").path],
                                      in: Self.workDirectory, stdin: Data()).wait()
        let line = result.lines.first { $0.contains("Overall exposure level for recurd.service") } ?? ""
        let score = line.split(separator: ":").last.flatMap { Double($0.split(separator: " ").first ?? "") }
        XCTAssertNotNil(score, "no score in: \(result.stdout) \(result.stderr)")
        XCTAssertLessThanOrEqual(score ?? 99, 1.5, line)
    }

    func test_a_firstConnectionActivates_readyAndLiveStatus_structuredJournal() throws {
        let harness = try booted()
        let inactive = try harness.show("recurd.service", ["ActiveState"])
        XCTAssertEqual(inactive["ActiveState"], "inactive", "recurd must wait for its first client")
        XCTAssertEqual(try harness.show("recurd.socket", ["ActiveState"])["ActiveState"], "active")

        let text = "To be, or not to be, that is the question"
        let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: text, in: Self.workDirectory)
        let client = try SocketClient(path: socketPath)
        let (events, reply) = try client.request(["op": "feed", "stream": "first", "text": text])
        XCTAssertNil(Protocol.errorCode(reply), "\(reply)")
        assertEventsMatchEval(events, reference, stream: "first")

        let status = try harness.waitFor("recurd.service", ["ActiveState", "StatusText", "Type"], "a live STATUS") {
            ($0["StatusText"] ?? "").contains("serving 1 stream,") && ($0["StatusText"] ?? "").contains("1 connection,")
        }
        XCTAssertEqual(status["ActiveState"], "active")
        XCTAssertEqual(status["Type"], "notify")
        XCTAssertTrue(status["StatusText"]!.contains("\(text.count) tokens since start"), status["StatusText"]!)

        let entries = try harness.journal("recurd.service").filter { ($0["SYSLOG_IDENTIFIER"] as? String) == "recurd" }
        let listening = entries.first { ($0["MESSAGE"] as? String)?.hasPrefix("listening on descriptor") == true }
        XCTAssertNotNil(listening, "no 'listening' entry among \(entries.count)")
        if let listening {
            XCTAssertEqual(listening["PRIORITY"] as? String, "6")
            XCTAssertEqual(listening["RECUR_CONNECTIONS_MAX"] as? String, "1024")
            XCTAssertTrue((listening["CODE_FILE"] as? String)?.hasSuffix("SocketServer.swift") == true, "\(listening)")
            XCTAssertNotNil(Int(listening["CODE_LINE"] as? String ?? ""), "\(listening)")
            XCTAssertEqual(listening["CODE_FUNC"] as? String, "run()")
        }
        for entry in entries {
            for key in entry.keys where !key.hasPrefix("_") {
                XCTAssertNotNil(key.range(of: "^[A-Z][A-Z0-9_]*$", options: .regularExpression), "invalid journal field \(key)")
            }
        }
    }

    func test_b_reload_goodModelSwapsIn_badModelIsRefusedAndOldServes() throws {
        let harness = try booted()
        let client = try SocketClient(path: socketPath)
        _ = try client.request(["op": "feed", "stream": "kept", "text": "To be"])
        let pid = try harness.show("recurd.service", ["MainPID"])["MainPID"]

        let perturbed = Self.workDirectory.appendingPathComponent("perturbed.safetensors")
        try ModelFiles.perturbedCopy(of: Repository.shakespeareModel, to: perturbed)
        try harness.write(try Data(contentsOf: perturbed), to: "/etc/recurd/model.safetensors")
        try harness.run(["systemctl", "reload", "recurd.service"])
        try harness.waitFor("recurd.service", ["StatusText"], "the reload") { ($0["StatusText"] ?? "").contains("reload 1: reloaded the model") }
        let text = "Whether 'tis nobler in the mind to suffer"
        let (fresh, _) = try client.request(["op": "feed", "stream": "after-reload", "text": text])
        assertEventsMatchEval(fresh, try recurEvalPerToken(model: perturbed, text: text, in: Self.workDirectory), stream: "after-reload")
        let (kept, _) = try client.request(["op": "feed", "stream": "kept", "text": ", or not"])
        XCTAssertEqual(kept.first?["offset"] as? Int, 6, "the stream kept its state across the reload")

        try harness.write(Data("not a model".utf8), to: "/etc/recurd/model.safetensors")
        try harness.run(["systemctl", "reload", "recurd.service"])
        try harness.waitFor("recurd.service", ["StatusText"], "the refused reload") { ($0["StatusText"] ?? "").contains("reload 2: refused") }
        let (again, _) = try client.request(["op": "feed", "stream": "after-bad-reload", "text": text])
        assertEventsMatchEval(again, try recurEvalPerToken(model: perturbed, text: text, in: Self.workDirectory), stream: "after-bad-reload")
        let after = try harness.show("recurd.service", ["MainPID", "ActiveState"])
        XCTAssertEqual(after["MainPID"], pid, "a reload never restarts the process")
        XCTAssertEqual(after["ActiveState"], "active")
        let refusal = try harness.journal("recurd.service").first {
            ($0["MESSAGE"] as? String)?.contains("could not be loaded") == true
        }
        XCTAssertEqual(refusal?["PRIORITY"] as? String, "3", "the refusal is logged as an error")
        try harness.write(try Data(contentsOf: Repository.shakespeareModel), to: "/etc/recurd/model.safetensors")
        try harness.run(["systemctl", "reload", "recurd.service"])
        try harness.waitFor("recurd.service", ["StatusText"], "the restoring reload") { ($0["StatusText"] ?? "").contains("reload 3: reloaded the model") }
    }

    func test_c_hungEngineIsRestartedByTheWatchdog() throws {
        let harness = try booted()
        let dropIn = "/etc/systemd/system/recurd.service.d/test-hang.conf"
        try harness.write(Data("""
            [Service]
            WatchdogSec=2s
            Environment=RECURD_TEST_HANG_ENGINE_AFTER=1
            LimitCORE=0

            """.utf8), to: dropIn)
        defer {
            _ = try? harness.run(["rm", "-f", dropIn])
            _ = try? harness.run(["systemctl", "daemon-reload"])
            _ = try? harness.run(["systemctl", "restart", "recurd.service"])
        }
        try harness.run(["systemctl", "daemon-reload"])
        try harness.run(["systemctl", "restart", "recurd.service"])
        let before = Int(try harness.show("recurd.service", ["NRestarts"])["NRestarts"] ?? "") ?? 0
        try harness.waitFor("recurd.service", ["NRestarts"], "a watchdog restart", timeout: 30) {
            (Int($0["NRestarts"] ?? "") ?? 0) > before
        }
        let messages = try harness.journal("recurd.service").compactMap { $0["MESSAGE"] as? String }
        XCTAssertTrue(messages.contains { $0.contains("Watchdog timeout") }, messages.suffix(15).joined(separator: "\n"))
        XCTAssertTrue(messages.contains { $0.contains("hanging the engine thread") })
    }
}

extension SystemdHarnessTests {
    /// Clients stream continuously, each request waiting for its reply, while `systemctl
    /// restart recurd` runs three times: no client sees an error or a disconnect, and every
    /// stream's events are exactly what `recur eval --per-token` computes for its whole text
    /// (so no token was lost, repeated or scored on a lost state).
    func test_d_restartUnderLoad_noDisconnectNoLostToken() throws {
        let harness = try booted()
        let lines = try String(contentsOf: Repository.hamlet, encoding: .utf8).split(separator: "\n").map { String($0) + "\n" }
        let clients = 6
        let stop = LockedFlag()
        let collected = ClientRuns(count: clients)
        let path = socketPath
        _ = try SocketClient(path: path)  // activate before the clients start
        try harness.waitFor("recurd.service", ["ActiveState"], "recurd to run") { $0["ActiveState"] == "active" }
        let pidBefore = try harness.show("recurd.service", ["MainPID"])["MainPID"]
        let group = DispatchGroup()
        for c in 0..<clients {
            group.enter()
            Thread {
                defer { group.leave() }
                var run = ClientRun()
                // The last client uses its connection's private stream (no name).
                let stream: String? = c == clients - 1 ? nil : "load-\(c)"
                do {
                    let client = try SocketClient(path: path)
                    var i = c
                    while !stop.isSet || run.requests < 5 {
                        let chunk = lines[i % lines.count]
                        i += 1
                        var request: [String: Any] = ["op": "feed", "text": chunk]
                        if let stream { request["stream"] = stream }
                        let (events, reply) = try client.request(request, timeout: 30)
                        if let code = Protocol.errorCode(reply) { run.errors.append("\(code): \(reply)"); break }
                        run.text += chunk
                        run.events += events
                        run.requests += 1
                    }
                } catch {
                    run.disconnects += 1
                    run.errors.append("\(error)")
                }
                collected.set(c, run)
            }.start()
        }
        var restarts = 0
        for _ in 0..<3 {
            Thread.sleep(forTimeInterval: 1.0)
            try harness.run(["systemctl", "restart", "recurd.service"])
            restarts += 1
        }
        Thread.sleep(forTimeInterval: 1.0)
        stop.set()
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success, "clients did not finish")
        XCTAssertNotEqual(try harness.show("recurd.service", ["MainPID"])["MainPID"], pidBefore, "the daemon was restarted")

        var tokens = 0, disconnects = 0, lost = 0
        for (c, run) in collected.all.enumerated() {
            let name = c == clients - 1 ? "private stream" : "load-\(c)"
            XCTAssertEqual(run.errors, [], "client \(c)")
            disconnects += run.disconnects
            tokens += run.events.count
            let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: run.text, in: Self.workDirectory)
            lost += max(0, reference.count + 1 - run.events.count)
            // The private stream is reported under its connection's name ("~<id>").
            let stream = run.events.first?["stream"] as? String ?? name
            assertEventsMatchEval(run.events, reference, stream: stream)
        }
        let handedOver = try harness.journal("recurd.service").compactMap { $0["MESSAGE"] as? String }
            .filter { $0 == "handed \(clients) connections over to the next process" }
        XCTAssertEqual(handedOver.count, restarts, "every restart handed every client over")
        // Reported in the closing note of issue 4.
        print("restart under load: \(clients) clients, \(restarts) restarts, \(tokens) tokens, \(disconnects) disconnects, \(lost) lost tokens; \(handedOver)")
        XCTAssertEqual(disconnects, 0)
        XCTAssertEqual(lost, 0)
    }
}

/// One load client's record.
struct ClientRun {
    var text = ""
    var events: [[String: Any]] = []
    var requests = 0
    var disconnects = 0
    var errors: [String] = []
}

final class ClientRuns: @unchecked Sendable {
    private let lock = NSLock()
    private var runs: [ClientRun]
    init(count: Int) { runs = Array(repeating: ClientRun(), count: count) }
    func set(_ i: Int, _ run: ClientRun) { lock.lock(); runs[i] = run; lock.unlock() }
    var all: [ClientRun] { lock.lock(); defer { lock.unlock() }; return runs }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
