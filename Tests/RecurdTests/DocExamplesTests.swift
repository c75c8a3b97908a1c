import Foundation
import XCTest
import RecurTestSupport

/// The docs' examples are tests, as Rust's doctests are: every ```console block and every
/// protocol transcript of README.md, docs/PROTOCOL.md, docs/CLUSTER.md and samples/socat.md runs against the
/// built recurd, and what it prints must be what the doc shows. The markup and the comparison
/// rules are in DEVELOPERS.md ("The docs' examples are tests").
final class DocExamplesTests: XCTestCase {
    func test_readme() throws { try run("README.md") }
    func test_protocol() throws { try run("docs/PROTOCOL.md") }
    func test_samplesSocat() throws { try run("samples/socat.md") }
    func test_cluster() throws { try run("docs/CLUSTER.md") }

    /// Runs a file's examples in order, as a reader would in one terminal: in a scratch
    /// directory that has the repository's samples/, with the built recur and recurd first on
    /// PATH and the doc's /tmp/recurd.sock moved into that directory.
    func run(_ file: String) throws {
        let url = Repository.root.appendingPathComponent(file)
        let parsed = try DocExamples(markdown: String(contentsOf: url, encoding: .utf8), name: file)
        XCTAssertFalse(parsed.examples.isEmpty, "\(file) has no examples to run")
        let directory = try makeWorkDirectory(self)
        let probe = try ChildProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "command -v socat"], in: directory, stdin: Data()).wait()
        guard probe.status == 0 else { return XCTFail("socat is not installed; scripts/ensure-deps installs it") }
        for shared in ["samples", "scripts"] {
            try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent(shared),
                                                       withDestinationURL: Repository.root.appendingPathComponent(shared))
        }
        let socket = directory.appendingPathComponent("recurd.sock").path
        let path = Executables.recurd.deletingLastPathComponent().path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        var background: [ChildProcess] = []
        var session: SocketClient?
        defer { for child in background { child.signal(SIGTERM); _ = try? child.wait(timeout: 20) } }

        for example in parsed.examples {
            let actual: [String]
            switch example.kind {
            case .command:
                let command = example.text.replacingOccurrences(of: "/tmp/recurd.sock", with: socket)
                let trimmed = command.trimmingCharacters(in: .whitespaces)
                if trimmed.hasSuffix("&"), !trimmed.hasSuffix("&&") {
                    // A daemon started in the background: its log is not output; wait until it listens.
                    let child = try ChildProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", "exec " + trimmed.dropLast()],
                                                 in: directory, environment: ["PATH": path])
                    background.append(child)
                    addTeardownBlock { child.signal(SIGKILL) }
                    if command.contains("--socket") {
                        try child.waitFor("\(file):\(example.line): the daemon to listen") { child.stderrText.contains("listening on") }
                    }
                    actual = []
                } else {
                    let result = try ChildProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", command], in: directory,
                                                  stdin: Data(), environment: ["PATH": path]).wait(timeout: 120)
                    actual = (Self.lines(result.stdout) + Self.lines(result.stderr))
                        .map { $0.replacingOccurrences(of: socket, with: "/tmp/recurd.sock") }
                }
            case .request:
                if session == nil { session = try SocketClient(path: socket) }
                try session!.send(line: example.text)
                var lines: [String] = []
                while let line = try session!.readLine(timeout: 60) {
                    lines.append(line)
                    if Self.endsReply(line) { break }
                }
                actual = lines
            }
            if !DocOutput.matches(example.expected, actual) {
                XCTFail("""
                    \(file):\(example.line): \(example.kind == .command ? "$" : ">") \(example.text)
                    printed:
                    \(actual.joined(separator: "\n"))
                    but the doc shows:
                    \(example.expected.joined(separator: "\n"))
                    """)
            }
        }
        if let session {
            // Nothing more may come after the last reply the doc shows.
            session.shutdownWrite()
            var rest: [String] = []
            while let line = try session.readLine(timeout: 30) { rest.append(line) }
            XCTAssertEqual(rest, [], "\(file): lines after the last reply the doc shows")
        }
        print("\(file): \(parsed.examples.count) examples run, \(parsed.skipped.count) blocks skipped: "
              + parsed.skipped.map { "line \($0.line) (\($0.reason))" }.joined(separator: ", "))
    }

    /// The comparison rules DEVELOPERS.md documents, each of which can fail.
    func test_comparisonRules() throws {
        XCTAssertTrue(DocOutput.matches(["a", "b"], ["a", "b"]))
        XCTAssertFalse(DocOutput.matches(["a", "b"], ["a", "b", "c"]), "an extra line fails")
        XCTAssertFalse(DocOutput.matches(["a", "b"], ["a"]), "a missing line fails")
        XCTAssertTrue(DocOutput.matches(["a", "...", "z"], ["a", "z"]))
        XCTAssertTrue(DocOutput.matches(["a", "...", "z"], ["a", "b", "c", "z"]))
        XCTAssertFalse(DocOutput.matches(["a", "...", "z"], ["a", "b", "c"]))
        XCTAssertTrue(DocOutput.matches([#"{"x":1,...}"#], [#"{"x":1,"y":[2,3]}"#]))
        XCTAssertFalse(DocOutput.matches([#"{"x":1,...}"#], [#"{"x":2,"y":[2,3]}"#]), "integers are exact")
        XCTAssertTrue(DocOutput.matches([#"{"p":0.09890184}"#], [#"{"p":0.098901845}"#]), "floats agree to 1e-5")
        XCTAssertFalse(DocOutput.matches([#"{"p":0.0989}"#], [#"{"p":0.09890184}"#]), "but not to 1e-4")
        XCTAssertTrue(DocOutput.matches([#"{"created":"2026-11-26T22:10:07.303Z","uptime":4.18,"streams":2}"#],
                                        [#"{"created":"2027-01-01T00:00:00.000Z","uptime":0.5,"streams":2}"#]))
        XCTAssertFalse(DocOutput.matches([#"{"created":"2026-11-26T22:10:07.303Z","streams":2}"#],
                                         [#"{"created":"2027-01-01T00:00:00.000Z","streams":3}"#]))
        let parsed = try DocExamples(markdown: """
            <!-- doctest: skip needs root -->
            ```console
            $ sudo true
            ```
            ```console
            $ printf 'a\\n' \\
                'b'
            a
            $ cat <<'END'
            x
            END
            x
            ```
            ```
            > {"op":"stats"}
            {"op":"stats"}
            ```
            """, name: "t.md")
        XCTAssertEqual(parsed.skipped.map(\.reason), ["needs root"])
        XCTAssertEqual(parsed.examples.map(\.text), ["printf 'a\\n' \\\n    'b'", "cat <<'END'\nx\nEND", #"{"op":"stats"}"#])
        XCTAssertEqual(parsed.examples.map(\.expected), [["a"], ["x"], [#"{"op":"stats"}"#]])
        XCTAssertThrowsError(try DocExamples(markdown: "```\n# comment\n> {}\n```", name: "t.md"),
                             "a transcript with text before its first request must be marked skip")
    }

    /// The lines of `text`, without the empty one after a final newline.
    static func lines(_ text: String) -> [String] {
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    /// Whether a line from the daemon ends the answer to a request: a reply or an error (events
    /// and notices do not).
    static func endsReply(_ line: String) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return true }
        return object["error"] != nil || (object["op"] != nil && object["notice"] == nil)
    }
}
