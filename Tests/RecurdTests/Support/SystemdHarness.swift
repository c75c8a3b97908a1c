import Foundation
import RecurTestSupport
import XCTest

/// A real systemd as PID 1 of a private PID + mount namespace (scripts/systemd-harness; see
/// DEVELOPERS.md), with recurd installed by scripts/install as an operator would.
final class SystemdHarness: @unchecked Sendable {
    static let script = Repository.root.appendingPathComponent("scripts/systemd-harness")
    /// The host's pid of the namespace's PID 1.
    let pid: Int32
    let directory: URL

    /// Boots systemd; throws XCTSkip when the test cannot (not root, no systemd).
    static func boot(in directory: URL) throws -> SystemdHarness {
        guard getuid() == 0 else { throw XCTSkip("the systemd harness needs root (unshare, mount); CI runs as root") }
        guard FileManager.default.isExecutableFile(atPath: "/lib/systemd/systemd") else {
            throw XCTSkip("systemd is not installed (scripts/ensure-deps installs it)")
        }
        // The runs' output files go to `directory`, never into the repository.
        let result = try ChildProcess(script, ["boot"], in: directory, stdin: Data()).wait(timeout: 60)
        guard result.status == 0, let pid = Int32(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestFailure("scripts/systemd-harness boot failed (\(result.status)): \(result.stderr)")
        }
        return SystemdHarness(pid: pid, directory: directory)
    }

    private init(pid: Int32, directory: URL) {
        self.pid = pid
        self.directory = directory
    }

    /// Runs a command inside (cwd: the repository), e.g. ["systemctl", "restart", "recurd"].
    @discardableResult
    func run(_ command: [String], stdin: Data = Data(), timeout: Double = 60, check: Bool = true) throws -> ProcessResult {
        let result = try ChildProcess(Self.script, ["run", "\(pid)"] + command, in: directory, stdin: stdin).wait(timeout: timeout)
        if check && result.status != 0 {
            throw TestFailure("\(command.joined(separator: " ")) failed (\(result.status)): \(result.stderr) \(result.stdout)")
        }
        return result
    }

    /// Writes `data` to `path` inside (e.g. a model file or a drop-in).
    func write(_ data: Data, to path: String) throws {
        try run(["sh", "-c", "mkdir -p \"$(dirname '\(path)')\" && cat > '\(path)'"], stdin: data)
    }

    /// `systemctl show UNIT -p NAME...` as a dictionary.
    func show(_ unit: String, _ properties: [String]) throws -> [String: String] {
        let result = try run(["systemctl", "show", unit] + properties.flatMap { ["-p", $0] })
        var values: [String: String] = [:]
        for line in result.lines {
            guard let eq = line.firstIndex(of: "=") else { continue }
            values[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return values
    }

    /// Polls `show` until `condition` holds (at most `timeout` seconds); returns the last values.
    @discardableResult
    func waitFor(_ unit: String, _ properties: [String], _ what: String, timeout: Double = 30,
                 _ condition: ([String: String]) -> Bool) throws -> [String: String] {
        try eventually(what, timeout: .seconds(timeout), interval: .milliseconds(100), { try show(unit, properties) }, until: condition)
    }

    /// The unit's journal entries as JSON objects.
    func journal(_ unit: String) throws -> [[String: Any]] {
        let result = try run(["journalctl", "-u", unit, "-o", "json", "--no-pager"])
        return result.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// A socket path inside, reachable from the host through /proc/PID/root.
    func hostPath(_ path: String) -> String { "/proc/\(pid)/root\(path)" }

    /// Powers it off (or kills it).
    func halt() {
        _ = try? ChildProcess(Self.script, ["halt", "\(pid)"], in: directory, stdin: Data()).wait(timeout: 30)
    }
}
