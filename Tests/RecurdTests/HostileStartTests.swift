import Foundation
import XCTest
import RecurTestSupport

/// Starting the real daemon where another user, or an unlucky operator, has prepared the
/// ground: a live socket of another daemon it may not connect to, a stale socket of another
/// user, its own socket replaced while it runs, and state directories with symlinks, other
/// owners and loose modes. Each refusal is one clear line naming the path, and nothing is
/// touched before it. Cases with a second user run it as uid 65534 through setpriv (root only).
final class HostileStartTests: XCTestCase {
    static let nobody: uid_t = 65534
    static let setpriv = URL(fileURLWithPath: "/usr/bin/setpriv")

    func requireSecondUser() throws {
        guard getuid() == 0 else {
            throw XCTSkip("running recurd as uid 65534 needs root (this test runs as uid \(getuid()))")
        }
        guard FileManager.default.isExecutableFile(atPath: Self.setpriv.path) else {
            throw XCTSkip("\(Self.setpriv.path) is needed to run recurd as another user")
        }
    }

    /// `recurd ARGS` as uid 65534, run to completion.
    func runRecurdAsNobody(_ arguments: [String], in directory: URL, timeout: Double = 30) throws -> ProcessResult {
        try ChildProcess(Self.setpriv, ["--reuid=\(Self.nobody)", "--regid=\(Self.nobody)", "--clear-groups",
                                        Executables.recurd.path] + arguments, in: directory).wait(timeout: timeout)
    }

    /// A copy of the Shakespeare model in `directory` that uid 65534 can read: the clone may
    /// sit below a directory only its owner can enter (a mktemp -d, a private home).
    func modelReadableByAll(in directory: URL) throws -> String {
        let copy = directory.appendingPathComponent("shakespeare-lstm.safetensors")
        try FileManager.default.copyItem(at: Repository.shakespeareModel, to: copy)
        chmod(copy.path, 0o644)
        return copy.path
    }

    /// Device and inode of the file at `path` itself.
    func identity(_ path: String) throws -> [UInt64] {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw TestFailure("lstat(\(path)): \(String(cString: strerror(errno)))") }
        return [UInt64(info.st_dev), UInt64(info.st_ino)]
    }

    func mode(_ path: String) throws -> UInt32 {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw TestFailure("lstat(\(path)): \(String(cString: strerror(errno)))") }
        return UInt32(info.st_mode & 0o7777)
    }

    // MARK: - The socket path

    func test_secondDaemonAsAnotherUser_onALiveSocketItMayNotConnectTo_refusesAndLeavesItAlone() throws {
        try requireSecondUser()
        let directory = try makeWorkDirectory(self)
        chmod(directory.path, 0o777)  // writable by all, no sticky bit: the unlucky operator's directory
        let first = try Daemon.start(self, arguments: ["--socket-mode", "600"], in: directory)
        let before = try identity(first.socketPath)

        let second = try runRecurdAsNobody(["--model", try modelReadableByAll(in: directory), "--socket", first.socketPath,
                                            "--socket-mode", "666", "--log-level", "warning"], in: directory)
        assertCleanError(second, mentions: [first.socketPath, "not permitted", "may be live"])
        XCTAssertEqual(try identity(first.socketPath), before, "the live socket was replaced")
        XCTAssertEqual(try mode(first.socketPath), 0o600)
        let (_, reply) = try first.connect().request(["op": "stats"])
        XCTAssertNotNil(reply["streams"], "\(reply)")
        // The first daemon says that its directory lets others replace its socket.
        XCTAssertTrue(first.child.stderrText.contains("writable by other users and has no sticky bit"), first.child.stderrText)
    }

    func test_start_overAStaleSocketOfAnotherUser_refusesAndLeavesIt() throws {
        try requireSecondUser()
        let directory = try makeWorkDirectory(self)
        chmod(directory.path, 0o1777)
        let path = directory.appendingPathComponent("d.sock").path
        // uid 65534 binds a socket there and exits without removing it: a dead socket of theirs.
        let python = try ChildProcess(Self.setpriv, ["--reuid=\(Self.nobody)", "--regid=\(Self.nobody)", "--clear-groups",
                                                     "/usr/bin/python3", "-I", "-c",
                                                     "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path],
                                      in: directory).wait()
        XCTAssertEqual(python.status, 0, python.stderr)
        let before = try identity(path)

        let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--socket", path, "--log-level", "warning"],
                                   in: directory)
        assertCleanError(result, mentions: [path, "stale socket of uid 65534"])
        XCTAssertEqual(try identity(path), before)
    }

    func test_shutdown_whenTheSocketFileWasReplaced_leavesTheReplacement() throws {
        let daemon = try Daemon.start(self)
        // Another process takes the path over while the daemon runs.
        XCTAssertEqual(unlink(daemon.socketPath), 0)
        let replacement = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(replacement) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(daemon.socketPath.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(replacement, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0, String(cString: strerror(errno)))
        let theirs = try identity(daemon.socketPath)

        let result = try daemon.stop()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try? identity(daemon.socketPath), theirs, "recurd removed a socket file it did not bind")
    }

    func test_shutdown_removesItsOwnSocket() throws {
        let daemon = try Daemon.start(self, arguments: ["--socket-mode", "660"])
        XCTAssertEqual(try mode(daemon.socketPath), 0o660)
        XCTAssertEqual(try daemon.stop().status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.socketPath))
    }

    // MARK: - The state directory

    /// `recurd --stdin --state-dir DIR`: must fail with one line naming `fragments`.
    func assertStateDirRefused(_ state: String, in directory: URL, mentions fragments: [String],
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--stdin", "--state-dir", state,
                                    "--log-level", "warning"], in: directory, stdin: Data("To be".utf8))
        assertCleanError(result, mentions: fragments, file: file, line: line)
        XCTAssertTrue(result.stdout.isEmpty, "nothing may be served: \(result.stdout)", file: file, line: line)
    }

    func test_stateDirOfAnotherUser_withSymlinksToVictims_isRefusedBeforeAnythingIsTouched() throws {
        try requireSecondUser()
        let directory = try makeWorkDirectory(self)
        let state = directory.appendingPathComponent("state").path
        let victim = directory.appendingPathComponent("victim").path
        let elsewhere = directory.appendingPathComponent("elsewhere").path
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        chmod(victim, 0o644)
        XCTAssertEqual(mkdir(state, 0o777), 0)
        chmod(state, 0o777)
        XCTAssertEqual(chown(state, Self.nobody, Self.nobody), 0)
        XCTAssertEqual(symlink(victim, state + "/streams.sqlite"), 0)
        XCTAssertEqual(symlink(elsewhere, state + "/lock"), 0)

        try assertStateDirRefused(state, in: directory, mentions: [state, "belongs to uid 65534"])
        XCTAssertEqual(try mode(victim), 0o644, "the victim's mode was changed")
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
        XCTAssertFalse(FileManager.default.fileExists(atPath: elsewhere), "a file was created through the lock symlink")
        XCTAssertEqual(try mode(state), 0o777, "the directory's mode was changed")
    }

    func test_stateDirFilesThatAreSymlinksOrOfAnotherUser_areRefusedNamingTheFile() throws {
        let directory = try makeWorkDirectory(self)
        let victim = directory.appendingPathComponent("victim").path
        let elsewhere = directory.appendingPathComponent("elsewhere").path
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        chmod(victim, 0o644)
        for name in ["streams.sqlite", "lock", "streams.sqlite-wal", "streams.sqlite-shm"] {
            let state = directory.appendingPathComponent("state-\(name)").path
            XCTAssertEqual(mkdir(state, 0o700), 0)
            XCTAssertEqual(symlink(name == "lock" ? elsewhere : victim, state + "/" + name), 0)
            try assertStateDirRefused(state, in: directory, mentions: [state + "/" + name, "symbolic link"])
            XCTAssertEqual(try mode(victim), 0o644, name)
            XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious", name)
            XCTAssertFalse(FileManager.default.fileExists(atPath: elsewhere), name)
        }
        // A hard link to another file, and a file that is not a regular one.
        let linked = directory.appendingPathComponent("state-hardlink").path
        XCTAssertEqual(mkdir(linked, 0o700), 0)
        XCTAssertEqual(link(victim, linked + "/streams.sqlite"), 0)
        try assertStateDirRefused(linked, in: directory, mentions: [linked + "/streams.sqlite", "2 hard links"])
        let fifo = directory.appendingPathComponent("state-fifo").path
        XCTAssertEqual(mkdir(fifo, 0o700), 0)
        XCTAssertEqual(mkfifo(fifo + "/lock", 0o600), 0)
        try assertStateDirRefused(fifo, in: directory, mentions: [fifo + "/lock", "not a regular file"])

        guard getuid() == 0 else { return }  // the rest needs a file of another user
        let foreign = directory.appendingPathComponent("state-foreign").path
        XCTAssertEqual(mkdir(foreign, 0o700), 0)
        FileManager.default.createFile(atPath: foreign + "/streams.sqlite-wal", contents: nil)
        XCTAssertEqual(chown(foreign + "/streams.sqlite-wal", Self.nobody, Self.nobody), 0)
        try assertStateDirRefused(foreign, in: directory, mentions: [foreign + "/streams.sqlite-wal", "belongs to uid 65534"])
    }

    func test_stateDirThatIsASymlinkOrWritableByOthers_isRefused() throws {
        let directory = try makeWorkDirectory(self)
        let real = directory.appendingPathComponent("real").path
        XCTAssertEqual(mkdir(real, 0o700), 0)
        let link = directory.appendingPathComponent("link").path
        XCTAssertEqual(symlink(real, link), 0)
        if getuid() == 0 {
            // A link of another user's could point anywhere; root's or this user's own are
            // followed (systemd's DynamicUser= state directory is one) to a directory that is checked.
            XCTAssertEqual(lchown(link, Self.nobody, Self.nobody), 0)
            try assertStateDirRefused(link, in: directory, mentions: [link, "symbolic link of uid 65534"])
            try assertStateDirRefused(link + "/", in: directory, mentions: [link, "symbolic link of uid 65534"])
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: real), [], "something was created through the link")
        }
        let ownLink = directory.appendingPathComponent("own-link").path
        let loose = directory.appendingPathComponent("loose").path
        XCTAssertEqual(mkdir(loose, 0o777), 0)
        chmod(loose, 0o777)
        XCTAssertEqual(symlink(loose, ownLink), 0)
        try assertStateDirRefused(ownLink, in: directory, mentions: [loose, "writable by"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: loose), [])

        for loose: mode_t in [0o777, 0o770, 0o702] {
            let open = directory.appendingPathComponent("open-\(String(loose, radix: 8))").path
            XCTAssertEqual(mkdir(open, 0o700), 0)
            chmod(open, loose)
            try assertStateDirRefused(open, in: directory, mentions: [open, "writable by", "chmod 700"])
            XCTAssertEqual(try mode(open), UInt32(loose), "the directory was changed before the refusal")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: open), [])
        }

        // Inside a directory every user may write, without the sticky bit: another user could
        // rename it away.
        let shared = directory.appendingPathComponent("shared").path
        XCTAssertEqual(mkdir(shared, 0o777), 0)
        chmod(shared, 0o777)
        try assertStateDirRefused(shared + "/state", in: directory, mentions: [shared + "/state", "no sticky bit"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: shared + "/state"))
    }

    func test_stateDirOfThisUser_readableByOthers_isTightenedAndServes_alsoThroughItsOwnLink() throws {
        let directory = try makeWorkDirectory(self)
        let state = directory.appendingPathComponent("state").path
        XCTAssertEqual(mkdir(state, 0o755), 0)
        chmod(state, 0o755)
        let link = directory.appendingPathComponent("link").path
        XCTAssertEqual(symlink(state, link), 0)  // as systemd's DynamicUser= /var/lib/NAME
        let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--stdin", "--state-dir", link,
                                    "--log-level", "warning"], in: directory, stdin: Data("To be".utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.count, 5, result.stdout)
        XCTAssertEqual(try mode(state), 0o700)
        XCTAssertEqual(try mode(state + "/streams.sqlite"), 0o600)
    }
}
