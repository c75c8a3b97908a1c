import Foundation
import RecurTestSupport
import XCTest

/// recurd's systemd protocol without a systemd: a datagram socket as $NOTIFY_SOCKET and
/// `systemd-socket-activate` for the listening socket. (The same under a real systemd:
/// SystemdHarnessTests.)
final class SystemdLightTests: XCTestCase {
    private func notifyingDaemon(_ directory: URL, model: URL, extra: [String: String] = [:]) throws -> (ChildProcess, NotifyListener, String) {
        let listener = try NotifyListener(path: directory.appendingPathComponent("notify").path)
        let socket = directory.appendingPathComponent("d.sock").path
        let child = try ChildProcess(Executables.recurd, ["--model", model.path, "--socket", socket], in: directory,
                                     environment: listener.environment.merging(extra) { $1 })
        addTeardownBlock { child.signal(SIGKILL) }
        return (child, listener, socket)
    }

    func test_notify_readyOnlyOnceSocketAccepts_thenLiveStatus_thenStopping() throws {
        let directory = try makeWorkDirectory(self)
        let (child, listener, socket) = try notifyingDaemon(directory, model: Repository.shakespeareModel)
        let ready = try listener.waitFor("READY=1") { $0.contains("READY=1") }
        XCTAssertTrue(ready.contains("STATUS=serving 0 streams"), ready)
        // READY=1 came after the socket accepts: a connection succeeds at once.
        let client = try SocketClient(path: socket)
        let (events, _) = try client.request(["op": "feed", "stream": "s1", "text": "To be, or not to be"])
        XCTAssertEqual(events.count, 19)
        let status = try listener.waitFor("a STATUS with the stream and connection") {
            $0.contains("STATUS=serving 1 stream,") && $0.contains("1 connection,") && $0.contains("19 tokens since start")
        }
        XCTAssertTrue(status.contains("tokens/s"), status)
        child.signal(SIGTERM)
        try listener.waitFor("STOPPING=1") { $0.hasPrefix("STOPPING=1") }
        XCTAssertEqual(try child.wait().status, 0)
    }

    /// Issue 14 item 4: with a descriptor store (a $NOTIFY_SOCKET), SIGUSR2 (the unit's
    /// RestartKillSignal=) is a restart: the connection goes to the store (FDSTORE=1, named
    /// recurd-conn-<id>) with the handover state. SIGTERM is a stop: nothing is stored, the
    /// client reads its reply, then end of file, and recurd says once why it did not hand over.
    func test_restartSignalHandsConnectionsOver_sigtermClosesThemWithoutStoring() throws {
        for (signal, restarts) in [(SIGUSR2, true), (SIGTERM, false)] {
            let directory = try makeWorkDirectory(self)
            let (child, listener, socket) = try notifyingDaemon(directory, model: Repository.shakespeareModel)
            try listener.waitFor("READY=1") { $0.contains("READY=1") }
            let client = try SocketClient(path: socket)
            let (events, reply) = try client.request(["op": "feed", "stream": "kept", "text": "To be"])
            XCTAssertEqual(events.count, 5, "\(reply)")
            child.signal(signal)
            let result = try child.wait(timeout: 30)
            XCTAssertEqual(result.status, 0, "signal \(signal): \(result.stderr)")
            var messages: [String] = []
            while let message = listener.next(timeout: 0) { messages.append(message) }  // all sent before the exit
            let stored = messages.filter { $0.hasPrefix("FDSTORE=1") }
            if restarts {
                XCTAssertTrue(stored.contains { $0.contains("FDNAME=recurd-conn-") }, "the connection is handed over: \(messages)")
                XCTAssertTrue(stored.contains { $0.contains("FDNAME=recurd-handover") }, "\(messages)")
                XCTAssertTrue(result.stderr.contains("restarting (signal \(SIGUSR2))"), result.stderr)
                XCTAssertTrue(result.stderr.contains("handed 1 connections over to the next process"), result.stderr)
            } else {
                XCTAssertEqual(stored, [], "a stop stores nothing (systemd would close it with a reset)")
                XCTAssertNil(try client.readLine(timeout: 5), "the client reads end of file")
                XCTAssertTrue(result.stderr.contains("stopping, not restarting"), result.stderr)
                XCTAssertFalse(result.stderr.contains("handed "), result.stderr)
            }
        }
    }

    func test_watchdog_pingsWhileEngineTurns_andStopsWhenEngineHangs() throws {
        let directory = try makeWorkDirectory(self)
        let (child, listener, _) = try notifyingDaemon(directory, model: Repository.shakespeareModel,
                                                       extra: ["WATCHDOG_USEC": "400000", "RECURD_TEST_HANG_ENGINE_AFTER": "1.5"])
        try listener.waitFor("READY=1") { $0.contains("READY=1") }
        let before = listener.collect(for: 1.0).filter { $0 == "WATCHDOG=1" }.count
        XCTAssertGreaterThanOrEqual(before, 5, "pings every 100 ms while the engine answers")
        _ = listener.collect(for: 1.0)  // the hang starts 1.5 s after start
        let after = listener.collect(for: 1.5)
        XCTAssertEqual(after.filter { $0 == "WATCHDOG=1" }.count, 0, "a hung engine earns no ping; got \(after)")
        XCTAssertTrue(after.contains { $0.hasPrefix("STATUS=") }, "the status still updates (it is not what proves liveness)")
        XCTAssertTrue(child.stderrText.contains("hanging the engine thread"), child.stderrText)
    }

    func test_reload_compatibleModelSwapsInKeepingStreams_brokenAndIncompatibleAreRefused() throws {
        let directory = try makeWorkDirectory(self)
        let modelPath = directory.appendingPathComponent("model.safetensors")
        try FileManager.default.copyItem(at: Repository.shakespeareModel, to: modelPath)
        let (child, listener, socket) = try notifyingDaemon(directory, model: modelPath)
        try listener.waitFor("READY=1") { $0.contains("READY=1") }
        let client = try SocketClient(path: socket)
        let first = "To be, or not to be", second = " that is the question"
        let (before, _) = try client.request(["op": "feed", "stream": "kept", "text": first])

        // A compatible model: the same vocabulary and shapes, other weights.
        let perturbed = directory.appendingPathComponent("perturbed.safetensors")
        try ModelFiles.perturbedCopy(of: Repository.shakespeareModel, to: perturbed)
        try FileManager.default.removeItem(at: modelPath)
        try FileManager.default.copyItem(at: perturbed, to: modelPath)
        child.signal(SIGHUP)
        let reloading = try listener.waitFor("RELOADING=1") { $0.contains("RELOADING=1") }
        XCTAssertTrue(reloading.contains("MONOTONIC_USEC="), reloading)
        let reloaded = try listener.waitFor("READY=1 after the reload") { $0.contains("READY=1") }
        XCTAssertTrue(reloaded.contains("reload 1: reloaded the model"), reloaded)
        // The old stream carries on from its offset; a new stream scores exactly as recur eval
        // does with the new file.
        let (after, _) = try client.request(["op": "feed", "stream": "kept", "text": second])
        XCTAssertEqual(after.first?["offset"] as? Int, before.count + 1)
        let (fresh, _) = try client.request(["op": "feed", "stream": "new", "text": first])
        assertEventsMatchEval(fresh, try recurEvalPerToken(model: perturbed, text: first, in: directory), stream: "new")
        XCTAssertNotEqual(fresh.map { Protocol.logprob($0) }, before.map { Protocol.logprob($0) }, "the new weights serve")

        // A broken file and an incompatible model are refused; the perturbed model serves on.
        for (name, write) in [("truncated", { try Data(try Data(contentsOf: perturbed).prefix(5000)).write(to: modelPath) }),
                              ("incompatible", { try FileManager.default.removeItem(at: modelPath)
                                                 try FileManager.default.copyItem(at: Repository.logsModel, to: modelPath) })] {
            try write()
            child.signal(SIGHUP)
            try listener.waitFor("RELOADING=1 (\(name))") { $0.contains("RELOADING=1") }
            let refused = try listener.waitFor("READY=1 after the \(name) reload") { $0.contains("READY=1") }
            XCTAssertTrue(refused.contains(": refused, the previous model serves"), refused)
            let (again, reply) = try client.request(["op": "feed", "stream": "new-\(name)", "text": first])
            XCTAssertNil(Protocol.errorCode(reply), "\(reply)")
            assertEventsMatchEval(again, try recurEvalPerToken(model: perturbed, text: first, in: directory), stream: "new-\(name)")
        }
        let log = child.stderrText
        XCTAssertTrue(log.contains("error: the model '\(modelPath.path)' could not be loaded"), log)
        XCTAssertTrue(log.contains("error: the model '\(modelPath.path)' was refused") && log.contains("hidden width differs"), log)
        child.signal(SIGTERM)
        XCTAssertEqual(try child.wait().status, 0)
    }

    func test_socketActivation_firstConnectionStartsRecurdOnPassedSocket() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-socket-activate") else {
            throw XCTSkip("systemd-socket-activate is not installed (Debian package systemd; scripts/ensure-deps installs it)")
        }
        let directory = try makeWorkDirectory(self)
        let socket = directory.appendingPathComponent("act.sock").path
        let text = "To be, or not to be"
        // Before the activator starts: Foundation's Process waits for an exec'ing child in a way
        // that stalls other children's exits while it runs.
        let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: text, in: directory)
        let activator = try ChildProcess(URL(fileURLWithPath: "/usr/bin/systemd-socket-activate"),
                                         ["-l", socket, "--fdname=recurd", Executables.recurd.path,
                                          "--model", Repository.shakespeareModel.path],
                                         in: directory)
        addTeardownBlock { activator.signal(SIGKILL) }
        // The file exists from bind(); "Listening on" is logged after listen(), before which a connect is refused.
        try activator.waitFor("the activation socket listening") { activator.stderrText.contains("Listening on") }
        XCTAssertFalse(activator.stderrText.contains("listening on"), "recurd must not run before a client connects")
        let client = try SocketClient(path: socket)
        let (events, _) = try client.request(["op": "feed", "stream": "s", "text": text])
        assertEventsMatchEval(events, reference, stream: "s")
        XCTAssertTrue(activator.stderrText.contains("listening on descriptor 3"), activator.stderrText)
        activator.signal(SIGTERM)
        _ = try activator.wait()
    }
    /// Issue 14: on a socket from systemd (here systemd-socket-activate), a model that cannot be
    /// loaded does not end recurd: READY=1 with a "no model" status, an error line, each
    /// connection refused with model_unavailable; SIGHUP after a good model is installed serves.
    func test_socketActivation_badModel_refusesWithModelUnavailable_thenReloadServes() throws {
        let text = "To be, or not to be"
        // Before the activator starts (see test_socketActivation_firstConnectionStartsRecurdOnPassedSocket).
        let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: text, in: try makeWorkDirectory(self))
        let (_, activator, listener, socket, model) = try activatedWithBrokenModel()
        let refused = try SocketClient(path: socket)
        try refused.send(["op": "feed", "stream": "s", "text": "To be"])
        let line = try refused.readObject()
        XCTAssertEqual(Protocol.errorCode(line), "model_unavailable", "\(line)")
        XCTAssertNil(try refused.readLine(), "the refused connection is closed")
        let ready = try listener.waitFor("READY=1") { $0.contains("READY=1") }
        XCTAssertTrue(ready.contains("STATUS=no model: cannot load the model"), ready)
        XCTAssertTrue(activator.stderrText.contains("recurd: error: cannot load the model '\(model.path)'"), activator.stderrText)

        try FileManager.default.removeItem(at: model)
        try FileManager.default.copyItem(at: Repository.shakespeareModel, to: model)
        activator.signal(SIGHUP)
        try listener.waitFor("READY=1 with the model") { $0.contains("READY=1") && $0.contains("STATUS=serving") }
        let (events, reply) = try SocketClient(path: socket).request(["op": "feed", "stream": "s", "text": text])
        XCTAssertNil(Protocol.errorCode(reply), "\(reply)")
        assertEventsMatchEval(events, reference, stream: "s")
        // The daemon's own signal handling took over: a reload, then a graceful stop.
        activator.signal(SIGHUP)
        try listener.waitFor("RELOADING=1 of the serving daemon") { $0.contains("RELOADING=1") }
        try listener.waitFor("READY=1 after it") { $0.contains("reload 1: reloaded the model") }
        activator.signal(SIGTERM)
        try listener.waitFor("STOPPING=1") { $0.hasPrefix("STOPPING=1") }
        XCTAssertEqual(try activator.wait().status, 0)
    }

    /// A stop while waiting for a model is a clean exit (STOPPING=1, status 0).
    func test_socketActivation_badModel_stopWhileWaiting_exitsCleanly() throws {
        let (_, activator, listener, socket, _) = try activatedWithBrokenModel()
        let refused = try SocketClient(path: socket)
        try refused.send(["op": "stats"])
        XCTAssertEqual(Protocol.errorCode(try refused.readObject()), "model_unavailable")
        try listener.waitFor("READY=1") { $0.contains("READY=1") }
        activator.signal(SIGTERM)
        try listener.waitFor("STOPPING=1") { $0.hasPrefix("STOPPING=1") }
        XCTAssertEqual(try activator.wait().status, 0)
        XCTAssertTrue(activator.stderrText.contains("stopping while waiting for a model"), activator.stderrText)
    }

    /// A stop sent just as a good model arrives (while it loads, while the daemon is being
    /// built, or once it serves) is never lost: recurd exits cleanly.
    func test_socketActivation_badModel_stopJustAsTheModelLoads_isNotLost() throws {
        // Not waits: the delays place the stop at different moments of the model's arrival.
        for delay in [0, 20_000, 60_000, 150_000] as [useconds_t] {
            let (_, activator, listener, socket, model) = try activatedWithBrokenModel()
            let refused = try SocketClient(path: socket)
            try refused.send(["op": "stats"])
            XCTAssertEqual(Protocol.errorCode(try refused.readObject()), "model_unavailable")
            try listener.waitFor("READY=1") { $0.contains("READY=1") }
            try FileManager.default.removeItem(at: model)
            try FileManager.default.copyItem(at: Repository.shakespeareModel, to: model)
            activator.signal(SIGHUP)
            usleep(delay)
            activator.signal(SIGTERM)
            XCTAssertEqual(try activator.wait(timeout: 20).status, 0, "stop \(delay) µs after SIGHUP: \(activator.stderrText)")
        }
    }

    /// systemd-socket-activate listening for recurd, whose model file holds junk.
    private func activatedWithBrokenModel() throws -> (URL, ChildProcess, NotifyListener, String, URL) {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-socket-activate") else {
            throw XCTSkip("systemd-socket-activate is not installed (Debian package systemd; scripts/ensure-deps installs it)")
        }
        let directory = try makeWorkDirectory(self)
        let model = directory.appendingPathComponent("model.safetensors")
        try Data("not a model".utf8).write(to: model)
        let listener = try NotifyListener(path: directory.appendingPathComponent("notify").path)
        let socket = directory.appendingPathComponent("act.sock").path
        let activator = try ChildProcess(URL(fileURLWithPath: "/usr/bin/systemd-socket-activate"),
                                         ["-l", socket, "--fdname=recurd", "-E", "NOTIFY_SOCKET",
                                          Executables.recurd.path, "--model", model.path, "--log", "stderr"],
                                         in: directory, environment: listener.environment)
        addTeardownBlock { activator.signal(SIGKILL) }
        // The file exists from bind(); "Listening on" is logged after listen(), before which a connect is refused.
        try activator.waitFor("the activation socket listening") { activator.stderrText.contains("Listening on") }
        return (directory, activator, listener, socket, model)
    }
}
