import Foundation
import RecurTestSupport
import XCTest

/// Bad command lines and bad model files end `recurd` with one clear line and a nonzero exit,
/// before anything is served.
final class FlagErrorTests: XCTestCase {
    func testRecurd_withoutSocketOrStdin_saysWhatToAdd() throws {
        let directory = try makeWorkDirectory(self)
        let result = try runRecurd(["--model", Repository.shakespeareModel.path], in: directory)
        assertCleanError(result, mentions: ["--socket", "--stdin"])
    }

    func testRecurd_withoutModel_namesTheMissingFlag() throws {
        let directory = try makeWorkDirectory(self)
        let result = try runRecurd(["--stdin"], in: directory)
        assertCleanError(result, mentions: ["--model"])
    }

    func testRecurd_withMissingModelFile_failsWithOneLineNamingIt() throws {
        let directory = try makeWorkDirectory(self)
        let result = try runRecurd(["--model", "nope.safetensors", "--stdin"], in: directory)
        assertCleanError(result, mentions: ["cannot load the model 'nope.safetensors'", "No such file"])
    }

    func testRecurd_withCorruptModelFile_failsWithOneLine() throws {
        let directory = try makeWorkDirectory(self)
        let model = directory.appendingPathComponent("junk.safetensors")
        try Data("this is not a safetensors file at all".utf8).write(to: model)
        let result = try runRecurd(["--model", model.path, "--socket", directory.appendingPathComponent("s").path], in: directory)
        assertCleanError(result, mentions: ["cannot load the model", "junk.safetensors",
                                            "not a safetensors model file", "it begins with text, 'this is not a sa'"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("s").path),
                       "no socket is created for a model that cannot load")
    }

    func testRecurd_withATextFileOrADirectoryAsTheModel_saysItIsNotAModelFile() throws {
        let directory = try makeWorkDirectory(self)
        let text = try runRecurd(["--model", Repository.hamlet.path, "--stdin"], in: directory)
        assertCleanError(text, mentions: ["hamlet.txt", "not a safetensors model file"])
        XCTAssertFalse(text.stderr.contains("exceeds the limit"), text.stderr)
        let folder = try runRecurd(["--model", directory.path, "--stdin"], in: directory)
        assertCleanError(folder, mentions: ["is a directory, not a safetensors model file"])
    }

    func testRecurd_withOutOfRangeValues_namesTheFlag() throws {
        let directory = try makeWorkDirectory(self)
        let model = Repository.shakespeareModel.path
        let cases: [([String], [String])] = [
            (["--top-k", "1000"], ["--top-k", "1000"]),
            (["--top-k", "-1"], ["--top-k"]),
            (["--max-line", "10"], ["--max-line"]),
            (["--max-line", "lots"], ["--max-line"]),
            (["--max-connections", "0"], ["--max-connections"]),
            (["--max-streams", "0"], ["--max-streams"]),
            (["--idle-timeout", "-5"], ["--idle-timeout"]),
            (["--max-streams-per-user", "-1"], ["--max-streams-per-user"]),
            (["--max-bytes-per-second-per-user", "fast"], ["--max-bytes-per-second-per-user"]),
            (["--socket-mode", "666"], ["--socket-mode", "--socket"]),
            (["--format", "xml"], ["--format", "xml"]),
            (["--log-level", "loud"], ["--log-level"]),
            (["--frobnicate"], ["--frobnicate"]),
        ]
        for (flags, fragments) in cases {
            let result = try runRecurd(["--model", model, "--stdin"] + flags, in: directory)
            assertCleanError(result, mentions: fragments)
        }
    }

    func testRecurd_withStdinOnlyFlagsButNoStdin_asksForStdin() throws {
        let directory = try makeWorkDirectory(self)
        let socket = directory.appendingPathComponent("s").path
        for flag in [["--format", "tsv"], ["--key-field"]] {
            let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--socket", socket] + flag, in: directory)
            assertCleanError(result, mentions: [flag[0], "--stdin"])
        }
    }

    func testRecurd_withBadSocketMode_namesTheFlag() throws {
        let directory = try makeWorkDirectory(self)
        let socket = directory.appendingPathComponent("s").path
        for mode in ["999", "rw-rw-rw-", "1777"] {
            let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--socket", socket, "--socket-mode", mode], in: directory)
            assertCleanError(result, mentions: ["--socket-mode", mode])
        }
    }

    func testRecurd_withOverlongSocketPath_explainsTheLimit() throws {
        let directory = try makeWorkDirectory(self)
        let socket = "/tmp/" + String(repeating: "x", count: 120)
        let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--socket", socket], in: directory)
        assertCleanError(result, mentions: ["--socket", "103"])
    }

    func testRecurd_withSocketInMissingDirectory_failsWithOneLine() throws {
        let directory = try makeWorkDirectory(self)
        let socket = directory.appendingPathComponent("no/such/dir/d.sock").path
        let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--socket", socket], in: directory)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.signalled)
        XCTAssertTrue(result.stderr.contains("recurd: error: "), "stderr: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains(socket), "the error names the socket path; stderr: \(result.stderr)")
    }

    func testRecurd_withBadSchedulingFlags_namesTheFlag() throws {
        let directory = try makeWorkDirectory(self)
        let socket = directory.appendingPathComponent("s").path
        for (flag, value) in [("--prompt-rows", "-1"), ("--prompt-rows-per-step", "0"), ("--bulk-rows-per-step", "0"), ("--prompt-rows", "many"), ("--inline-turns", "-1"), ("--inline-turns", "65")] {
            let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--socket", socket, flag, value], in: directory)
            assertCleanError(result, mentions: [flag])
        }
    }

    func testRecurd_help_listsEveryFlagAndExitsZero() throws {
        let directory = try makeWorkDirectory(self)
        let result = try runRecurd(["--help"], in: directory)
        XCTAssertEqual(result.status, 0, result.stderr)
        for flag in ["--model", "--socket", "--stdin", "--format", "--key-field", "--top-k", "--max-line",
                     "--max-connections", "--max-streams", "--idle-timeout", "--log-level", "--prompt-rows", "--prompt-rows-per-step", "--bulk-rows-per-step", "--inline-turns", "--precision"] {
            XCTAssertTrue(result.stdout.contains(flag), "--help lacks \(flag)")
        }
    }
}

/// The durable-streams flags.
final class StateDirectoryFlagTests: XCTestCase {
    func testRecurd_durabilityFlagsWithoutStateDir_sayToAddIt() throws {
        let directory = try makeWorkDirectory(self)
        for flags in [["--durability", "batched"], ["--checkpoint-interval", "100"], ["--sync-interval", "2"], ["--replay-history", "5"]] {
            let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--stdin"] + flags, in: directory, stdin: Data())
            assertCleanError(result, mentions: [flags[0], "--state-dir"])
        }
    }

    func testRecurd_badDurabilityValues_nameTheFlag() throws {
        let directory = try makeWorkDirectory(self)
        let state = directory.appendingPathComponent("state").path
        let cases: [([String], [String])] = [
            (["--durability", "sometimes"], ["--durability", "strict", "batched", "off"]),
            (["--checkpoint-interval", "0"], ["--checkpoint-interval"]),
            (["--sync-interval", "0"], ["--sync-interval"]),
            (["--replay-history", "-1"], ["--replay-history"]),
        ]
        for (flags, fragments) in cases {
            let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--stdin", "--state-dir", state] + flags,
                                       in: directory, stdin: Data())
            assertCleanError(result, mentions: fragments)
        }
    }

    /// A flag that would change nothing in the chosen durability mode is refused with a
    /// sentence, as the durability flags are without --state-dir.
    func testRecurd_durabilityFlagsThatDoNothingInTheChosenMode_sayWhichModeTheyNeed() throws {
        let directory = try makeWorkDirectory(self)
        let state = directory.appendingPathComponent("state").path
        let cases: [([String], [String])] = [
            (["--durability", "off", "--sync-interval", "2"], ["--sync-interval", "--durability batched", "off"]),
            (["--durability", "strict", "--sync-interval", "2"], ["--sync-interval", "--durability batched", "strict"]),
            (["--sync-interval", "2"], ["--sync-interval", "--durability batched", "the default"]),
            (["--durability", "off", "--replay-history", "10"], ["--replay-history", "--durability off"]),
        ]
        for (flags, fragments) in cases {
            let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--stdin", "--state-dir", state] + flags,
                                       in: directory, stdin: Data())
            assertCleanError(result, mentions: fragments)
        }
        let fine = try runRecurd(["--model", Repository.shakespeareModel.path, "--stdin", "--state-dir", state,
                                  "--durability", "batched", "--sync-interval", "2", "--log-level", "warning"],
                                 in: directory, stdin: Data("to be".utf8))
        XCTAssertEqual(fine.status, 0, fine.stderr)
    }

    func testRecurd_stateDirThatIsAFile_failsWithOneLine() throws {
        let directory = try makeWorkDirectory(self)
        let file = directory.appendingPathComponent("not-a-dir")
        try Data("x".utf8).write(to: file)
        let result = try runRecurd(["--model", Repository.shakespeareModel.path, "--stdin", "--state-dir", file.path,
                                    "--log-level", "warning"], in: directory, stdin: Data())
        assertCleanError(result, mentions: ["not-a-dir", "not a directory"])
    }

    func testRecurd_stdinWithStateDir_continuesTheStreamAfterARestart() throws {
        let directory = try makeWorkDirectory(self)
        let state = directory.appendingPathComponent("state").path
        let arguments = ["--model", Repository.shakespeareModel.path, "--stdin", "--format", "tsv", "--state-dir", state]
        let first = try runRecurd(arguments, in: directory, stdin: Data("To be, or not".utf8))
        XCTAssertEqual(first.status, 0, first.stderr)
        let second = try runRecurd(arguments, in: directory, stdin: Data(" to be".utf8))
        XCTAssertEqual(second.status, 0, second.stderr)
        // The second run's first token is the stream's 14th: the state came back from the directory.
        XCTAssertEqual(second.lines.first?.split(separator: "\t").first, "14", second.stdout)
        let mode = try FileManager.default.attributesOfItem(atPath: state)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o700)
    }
}
